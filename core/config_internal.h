/* core/config_internal.h - the parsed configuration, shared by config.c
 * (file, core keys, env) and config_plugin.c (plugin blocks). Internal. */
#ifndef PYOCO_CORE_CONFIG_INTERNAL_H
#define PYOCO_CORE_CONFIG_INTERNAL_H

#include "config.h"
#include "config_yaml.h"

typedef struct pyoco_config_block {
    char *name;
    char *file;  /* resolved "file:" or NULL */
    char *where; /* "name:line" of the block's key */
    int node;    /* yaml node id of the mapping, 0 for a null block */
} pyoco_config_block;

struct pyoco_config {
    pyoco_server_settings s;
    char *name; /* the file name used in messages */
    char *dir;  /* absolute directory relative paths resolve against */
    yaml_document_t doc;
    bool has_doc;
    char **paths;
    size_t npaths;
    pyoco_config_block *blocks;
    size_t nblocks;
};

#endif
