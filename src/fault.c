/* fault.c: STRATA_FAULT parsing, read once; a disarmed point costs one branch. */
#include "fault.h"

#include <mpi.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static int parsed;
static char armed_point[64];
static int armed_rank = -1;
static int armed_error;

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
    }
}

void strata_fault_arm(const char *point, int rank, int error)
{
    parsed = 1;
    armed_point[0] = '\0';
    if (point && strlen(point) < sizeof armed_point)
        strcpy(armed_point, point);
    armed_rank = rank;
    armed_error = error;
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
    raise(SIGKILL);
    return 1;
}
