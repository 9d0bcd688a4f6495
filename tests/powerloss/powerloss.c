/*
 * powerloss.c: an LD_PRELOAD shim that records what a process made durable, so
 * that a test can take a world directory back to its last durable state, as a
 * power loss would (SQLite's crash tests do the same at the VFS level). Test-only:
 * built in tests/, loaded by tests/scripts/test_powerloss.sh.
 *
 * Model (POSIX, no more): a file's content is durable as of its last fsync or
 * fdatasync (from any process: the page cache is shared); a directory's entries
 * (name -> inode) are durable as of the directory's last fsync. Nothing else is:
 * write, pwrite, MPI-IO and HDF5's drivers, rename, unlink and creat change only
 * the page cache. So the shim interposes fsync and fdatasync (and sync, syncfs)
 * at the libc level, which every writer goes through, whatever wrote the bytes:
 *   - fsync of a regular file inside POWERLOSS_DIR copies its current content to
 *     POWERLOSS_STATE/ino-<inode> (replaced atomically);
 *   - fsync of POWERLOSS_DIR itself writes its entries to POWERLOSS_STATE/dir.list.
 * The test snapshots the directory first (everything durable), and after the run
 * rebuilds it from dir.list and the inode copies: a name whose inode was never
 * fsync'ed comes back empty. Cut: with POWERLOSS_CUT=N the process of rank
 * POWERLOSS_RANK (OMPI_COMM_WORLD_RANK, default 0) kills itself with SIGKILL
 * before its Nth fsync, which mpirun turns into the death of the whole job: the
 * moment of the power loss. POWERLOSS_STATE/fsyncs.<rank> holds how many fsyncs
 * of the directory's files the rank made so far.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static char dir[PATH_MAX], state[PATH_MAX];
static long cut, events;
static int rank, ready;

static void setup(void)
{
    if (ready)
        return;
    ready = 1;
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *d = getenv("POWERLOSS_DIR"), *s = getenv("POWERLOSS_STATE");
    if (!d || !s || !realpath(d, dir) || strlen(s) >= sizeof state)
        dir[0] = '\0';
    else
        strcpy(state, s);
    const char *c = getenv("POWERLOSS_CUT"), *r = getenv("POWERLOSS_RANK"),
               *me = getenv("OMPI_COMM_WORLD_RANK");
    cut = c ? atol(c) : 0;
    if ((r ? atoi(r) : 0) != (me ? atoi(me) : 0))
        cut = 0;
    rank = me ? atoi(me) : 0;
}

/* Copy what `from` holds now to `to`, atomically (tmp file, rename). */
static void copy_file(const char *from, const char *to)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", to, (int)getpid());
    int in = open(from, O_RDONLY | O_CLOEXEC), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[1 << 16];
    ssize_t n;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            break;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    rename(tmp, to);
}

static void record_directory(void)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/dir.list", state);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    DIR *d = opendir(dir);
    for (struct dirent *e; f && d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fprintf(f, "%llu %s\n", (unsigned long long)e->d_ino, e->d_name);
    if (d)
        closedir(d);
    if (f)
        fclose(f);
    rename(tmp, path);
}

/* What fsync of fd makes durable, recorded before it runs (the content cannot
 * change in between: the caller is the one writer). */
static void record(int fd)
{
    setup();
    if (!dir[0])
        return;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return;
    path[n] = '\0';
    size_t dl = strlen(dir);
    int is_dir = strcmp(path, dir) == 0;
    int inside =
        !is_dir && strncmp(path, dir, dl) == 0 && path[dl] == '/' && !strchr(path + dl + 1, '/');
    if (!is_dir && !inside)
        return;
    events++;
    if (cut && events >= cut)
        raise(SIGKILL); /* the power goes before this fsync */
    char count[PATH_MAX + 32];
    snprintf(count, sizeof count, "%s/fsyncs.%d", state, rank);
    FILE *f = fopen(count, "w");
    if (f) {
        fprintf(f, "%ld\n", events);
        fclose(f);
    }
    if (is_dir) {
        record_directory();
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    char to[PATH_MAX + 32];
    snprintf(to, sizeof to, "%s/ino-%llu", state, (unsigned long long)st.st_ino);
    copy_file(link, to);
}

int fsync(int fd)
{
    record(fd);
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    record(fd);
    return real_fdatasync(fd);
}
