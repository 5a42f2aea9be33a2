/* prom_process.h - the standard process_* values (Linux). Cheap enough to
 * read on every scrape: one getrusage, one small procfs read, one
 * directory scan; the start time is read once. */
#ifndef PROM_PROCESS_H
#define PROM_PROCESS_H

typedef struct prom_process {
    double resident_memory_bytes;
    double virtual_memory_bytes;
    double cpu_seconds;
    double open_fds;
    double max_fds;
} prom_process;

/* When this process started (Unix seconds), from /proc/self/stat and the
 * boot time in /proc/stat; 0 if unknown. Constant: read it once. */
double prom_process_start_time(void);

/* Fills *out; 0 or a negative errno (fields it could not read are 0). */
int prom_process_read(prom_process *out);

#endif
