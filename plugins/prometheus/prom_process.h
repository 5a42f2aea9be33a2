/* prom_process.h - the standard process_* values, read from /proc/self
 * (Linux). Reads procfs only: no blocking I/O on the loop thread. */
#ifndef PROM_PROCESS_H
#define PROM_PROCESS_H

typedef struct prom_process {
    double resident_memory_bytes;
    double virtual_memory_bytes;
    double cpu_seconds;
    double start_time_seconds; /* Unix time */
    double open_fds;
    double max_fds;
} prom_process;

/* Boot time (Unix seconds) from /proc/stat, needed once to turn the
 * process start (in clock ticks since boot) into Unix time; 0 if unknown. */
double prom_process_boot_time(void);

/* Fills *out; 0 or a negative errno (fields it could not read are 0). */
int prom_process_read(double boot_time, prom_process *out);

#endif
