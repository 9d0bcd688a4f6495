/* jobs.h: the subcommands of `strata`, one file each. */
#ifndef STRATA_JOBS_H
#define STRATA_JOBS_H

#include "cli.h"

int job_create(job *j, int argc, char **argv);
int job_import(job *j, int argc, char **argv);
int job_update(job *j, int argc, char **argv);
int job_get(job *j, int argc, char **argv);
int job_info(job *j, int argc, char **argv);
int job_fsck(job *j, int argc, char **argv);
int job_compact(job *j, int argc, char **argv);
int job_rebalance(job *j, int argc, char **argv);
int job_region(job *j, int argc, char **argv);
int job_ray(job *j, int argc, char **argv);
int job_render(job *j, int argc, char **argv);
int job_stats(job *j, int argc, char **argv);
int job_reindex(job *j, int argc, char **argv);
int job_extract(job *j, int argc, char **argv);
int job_simulate(job *j, int argc, char **argv);
int job_bench(job *j, int argc, char **argv);

#endif
