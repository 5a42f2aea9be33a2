/* core/log.h - the server log (stderr): "<ISO time> <LEVEL> [<who>] message".
 */
#ifndef PYOCO_CORE_LOG_H
#define PYOCO_CORE_LOG_H

#include <stdarg.h>

#include <pyoco/types.h>

void pyoco_log_set_level(pyoco_log_level min);
pyoco_log_level pyoco_log_get_level(void);
/* who: "core" or a plugin name. */
void pyoco_log_write(pyoco_log_level level, const char *who, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
void pyoco_log_writev(pyoco_log_level level, const char *who, const char *fmt,
                      va_list ap);

#define PYOCO_LOGI(...) pyoco_log_write(PYOCO_LOG_INFO, "core", __VA_ARGS__)
#define PYOCO_LOGW(...) pyoco_log_write(PYOCO_LOG_WARN, "core", __VA_ARGS__)
#define PYOCO_LOGE(...) pyoco_log_write(PYOCO_LOG_ERROR, "core", __VA_ARGS__)
#define PYOCO_LOGD(...) pyoco_log_write(PYOCO_LOG_DEBUG, "core", __VA_ARGS__)

#endif
