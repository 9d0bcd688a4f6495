/* fault.c: STRATA_FAULT parsing, read once; a disarmed point costs one branch. */
#include "fault.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int parsed;
static char armed_point[64];
static int armed_rank = -1;
static int armed_error;
static int armed_pause;

static void parse_fault_spec(void)
{
    parsed = 1;
    const char *spec = getenv("STRATA_FAULT");
    if (!spec || !*spec)
        return;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n >= sizeof armed_point)
        return;
    memcpy(armed_point, spec, n);
    armed_point[n] = '\0';
    if (colon) {
        char *stop;
        long r = strtol(colon + 1, &stop, 10);
        armed_rank = stop != colon + 1 ? (int)r : -1;
        armed_error = strstr(stop, ":error") == stop;
        armed_pause = strstr(stop, ":pause") == stop;
    }
}

/* Action "pause": write the pid to STRATA_FAULT_PAUSE (default
 * strata-fault.paused in the working directory), wait until that file is
 * removed, then disarm (one pause per process) and go on. A test uses it to
 * hold a job at a point (a lock held, a file written) while it runs another
 * job, kills this one (kill -9 of the pid) or lets it go on. */
static void pause_here(const char *point)
{
    const char *path = getenv("STRATA_FAULT_PAUSE");
    if (!path || !*path)
        path = "strata-fault.paused";
    FILE *f = fopen(path, "w");
    if (!f)
        return; /* nobody could resume it: go on */
    fprintf(f, "%ld %s\n", (long)getpid(), point);
    fclose(f);
    const struct timespec tick = {0, 10 * 1000 * 1000};
    while (access(path, F_OK) == 0)
        nanosleep(&tick, NULL);
    armed_point[0] = '\0';
}

void strata_fault_arm(const char *point, int rank, int error)
{
    parsed = 1;
    armed_point[0] = '\0';
    if (point && strlen(point) < sizeof armed_point)
        strcpy(armed_point, point);
    armed_rank = rank;
    armed_error = error;
    armed_pause = 0;
}

int strata_fault_point(const char *point)
{
    if (!parsed)
        parse_fault_spec();
    if (!armed_point[0] || strcmp(point, armed_point) != 0)
        return 0;
    int rank = 0, initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (armed_rank >= 0 && armed_rank != rank)
        return 0;
    if (armed_error)
        return 1;
    if (armed_pause) {
        pause_here(point);
        return 0;
    }
    raise(SIGKILL);
    return 1;
}
