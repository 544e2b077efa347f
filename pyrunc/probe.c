/*
 * probe: report, as one line of JSON on stdout, what the kernel applied to this process.
 *
 * Built static (gcc -static -O2 -o probe probe.c) by `pyrunc verify`, which runs it in a
 * bundle's container as /.pyrunc-probe, and by the integration tests, which copy it into
 * each bundle as /probe. It needs nothing from the rootfs and calls the kernel only through
 * libc. It must keep working under a strict seccomp allow-list. The start-up of a static
 * glibc 2.36 binary (strace) makes: execve, brk, arch_prctl(ARCH_SET_FS), set_tid_address,
 * set_robust_list, rseq, prlimit64(RLIMIT_STACK), readlink("/proc/self/exe"), getrandom
 * (malloc's tcache), mprotect; glibc survives a refused rseq, readlink or getrandom, but not
 * a refused arch_prctl or brk. The report then needs getresuid, getresgid, getgroups,
 * getpid, getppid, uname (gethostname), getcwd, umask, openat, read, getdents64, readlink,
 * newfstatat, close, prlimit64, capget, prctl, write, exit_group; hold adds rt_sigaction,
 * rt_sigprocmask and pselect6. Every call is checked and reported, never fatal, so a
 * refused call shows up as an errno in the report instead of a crash.
 *
 * Grammar: probe [WORD ...]. Each WORD is NAME or NAME=ARG, run in order; the report always
 * has the base facts and, under "results", one entry per WORD keyed by the WORD itself:
 *
 *   call=NAME      a named experiment (calls[] below): socket_unix, socket_inet,
 *                  socket_inet6, bind80 (bind 0.0.0.0:80), statx, mknod (CAP_MKNOD),
 *                  sethostname (to its own name: CAP_SYS_ADMIN), setuid0, chown
 *                  (CAP_CHOWN), getrandom, mkdir, close_range, pidfd_open
 *                  -> {"errno": E}           (0 = the kernel allowed it)
 *   kill=N         ignore signal N, then kill(getpid(), N)      -> {"errno": E}
 *   write=PATH     create PATH (O_CREAT|O_EXCL, never an existing file) and write 6 bytes
 *                  -> {"errno": E}
 *   openw=PATH     open an existing PATH O_WRONLY and close it, writing nothing (safe on
 *                  /proc/sys and /proc/sysrq-trigger) -> {"errno": E}
 *   rw=/dev/X      open a device O_RDWR, write 1 byte, read 1 byte (only under /dev)
 *                  -> {"errno": E, "write_errno": E, "read_errno": E, "read": N, "byte": B}
 *   read=PATH      read up to 1 MiB -> {"errno": E, "bytes": N, "head": first 64 bytes}
 *   ls=PATH        list a directory -> {"errno": E, "entries": [names without . and ..]}
 *   stat=PATH      lstat -> {"errno": E, "mode": M, "uid", "gid", "major", "minor", "size"}
 *   statfs=PATH    statfs -> {"errno": E, "type": T, "bsize", "blocks", "flags"}
 *   chmod=PATH     chmod PATH to the mode it already has: a write that changes nothing (EROFS
 *                  on a read-only mount, even for a user without write permission; a
 *                  symlink is not followed) -> {"errno": E}
 *   remount=PATH   remount the bind mount at PATH read-write (MS_REMOUNT|MS_BIND): EPERM
 *                  where the kernel locked its read-only flag -> {"errno": E}
 *   ifflags=NAME   SIOCGIFFLAGS of network interface NAME -> {"errno": E, "flags": F}
 *   i386=NR        syscall NR of the 32-bit x86 ABI (int $0x80, arguments 0), in a child:
 *                  shows whether a seccomp filter covers SCMP_ARCH_X86 (an arch it lacks
 *                  kills the caller) -> {"errno": E} or {"errno": 0, "signal": S}
 *   sys=NR[,A0..A5]  what the seccomp filter does with syscall NR and these arguments
 *                  (decimal or 0x hex), without ever running it: a child (clone with a
 *                  shared fd table) adds a filter of its own that hands NR to the probe as a
 *                  user notification, then makes the call. Filters stack and the kernel takes
 *                  the strongest action, so an ERRNO, TRAP or KILL of the container's filter
 *                  wins over the notification, while an ALLOW or LOG reaches the probe, which
 *                  answers "0" in place of the kernel. TRACE and NOTIFY rules of the
 *                  container's filter look like ALLOW here (notification outranks TRACE;
 *                  a second listener is refused with EBUSY).
 *                  -> {"action": "allow" | "errno" | "kill" | "trap" | "signal" | "setup" |
 *                      "timeout", "errno": E, "signal": S, "data": D, "step": STEP}
 *                  errno: the call's errno (errno; 0 when ERRNO's data is 0), or the failing
 *                  step's (setup: step is mmap, clone, sigaction, no_new_privs or seccomp);
 *                  signal: what killed the child (kill is SIGSYS); data: a trap's
 *                  SECCOMP_RET_DATA; timeout: no answer in 5 s (the child is killed).
 *                  Needs mmap, clone, prctl, seccomp, ioctl, poll, wait4,
 *                  nanosleep, rt_sigaction and kill, besides the call itself.
 *   stdin          read fd 0 to EOF (up to 64 KiB) -> {"errno": E, "text": "..."}
 *   err=TEXT       write TEXT and a newline to fd 2 -> {"errno": E}
 *   sleep=SECS     sleep before going on -> {"errno": 0}
 * and two that act after the report is printed:
 *   exit=N         exit with status N (default 0)
 *   hold[=SECS]    catch SIGHUP/INT/QUIT/USR1/USR2/TERM, print {"signal": N} on a line for
 *                  each, and keep running (SECS, default for ever); the end is SIGKILL or
 *                  the time running out (then exit status 0).
 *
 * Base facts: pid, ppid, uid/gid/euid/egid/suid/sgid, groups, hostname, domainname, cwd,
 * umask, env, fds (open fds with readlink targets, the probe's own directory fd left out),
 * rlimits (name -> [soft, hard], RLIM_INFINITY as 18446744073709551615), ns (name -> inode
 * of /proc/self/ns/NAME), status (Cap*, NoNewPrivs, Seccomp, Seccomp_filters lines of
 * /proc/self/status, as text), caps (capget + prctl, for when /proc is missing), mounts
 * (/proc/self/mountinfo parsed), errors (what could not be read, with errno).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define PROBE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__s390x__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PROBE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#else
#error "sys=: add this architecture's AUDIT_ARCH_ value"
#endif

/* glibc exports capget but declares it only in libcap's header */
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };
extern int capget(struct cap_header *hdr, struct cap_data *data);
#define CAP_VERSION_3 0x20080522

/* ---- a tiny JSON writer into a growing buffer ---- */

static char *out;
static size_t out_len, out_cap;
static int need_comma;

static void put(const char *s, size_t n)
{
    if (out_len + n + 1 > out_cap) {
        size_t cap = out_cap ? out_cap : 65536;
        while (out_len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(out, cap);
        if (!p)
            _exit(120);
        out = p;
        out_cap = cap;
    }
    memcpy(out + out_len, s, n);
    out_len += n;
    out[out_len] = 0;
}

static void puts_raw(const char *s) { put(s, strlen(s)); }

static void printf_raw(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void comma(void)
{
    if (need_comma)
        puts_raw(",");
    need_comma = 1;
}

static void str_n(const char *s, size_t n)
{
    puts_raw("\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(e, 2);
        } else if (c == '\n') {
            puts_raw("\\n");
        } else if (c < 0x20 || c >= 0x7f) {
            /* bytes, not UTF-8: keep the output valid JSON whatever the input */
            printf_raw("\\u%04x", c);
        } else {
            put((const char *)&c, 1);
        }
    }
    puts_raw("\"");
}

static void str(const char *s) { str_n(s, strlen(s)); }

static void key(const char *k)
{
    comma();
    str(k);
    puts_raw(":");
    need_comma = 0;
}

static void open_obj(const char *k) { if (k) key(k); else comma(); puts_raw("{"); need_comma = 0; }
static void close_obj(void) { puts_raw("}"); need_comma = 1; }
static void open_arr(const char *k) { if (k) key(k); else comma(); puts_raw("["); need_comma = 0; }
static void close_arr(void) { puts_raw("]"); need_comma = 1; }
static void kv_int(const char *k, long long v) { key(k); printf_raw("%lld", v); need_comma = 1; }
static void kv_uint(const char *k, unsigned long long v)
{
    key(k);
    printf_raw("%llu", v);
    need_comma = 1;
}
static void kv_str(const char *k, const char *v) { key(k); str(v); need_comma = 1; }
static void kv_hex(const char *k, unsigned long long v)
{
    key(k);
    printf_raw("\"%016llx\"", v);
    need_comma = 1;
}
static void kv_null(const char *k) { key(k); puts_raw("null"); need_comma = 1; }
static void item_int(long long v) { comma(); printf_raw("%lld", v); }
static void item_str(const char *v) { comma(); str(v); }

static void flush_out(void)
{
    size_t done = 0;
    while (done < out_len) {
        ssize_t n = write(1, out + done, out_len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(121);
        }
        done += (size_t)n;
    }
    out_len = 0;
}

/* base-fact failures: "what" -> errno, listed under "errors" */
static char errors[4096];
static size_t errors_len;

static void note_error(const char *what, int err)
{
    int n = snprintf(errors + errors_len, sizeof errors - errors_len, "%s%s\t%d",
                     errors_len ? "\n" : "", what, err);
    if (n > 0 && (size_t)n < sizeof errors - errors_len)
        errors_len += (size_t)n;
}

/* ---- base facts ---- */

static void report_ids(void)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) == 0) {
        kv_int("uid", r); kv_int("euid", e); kv_int("suid", s);
    } else {
        note_error("getresuid", errno);
    }
    if (getresgid(&gr, &ge, &gs) == 0) {
        kv_int("gid", gr); kv_int("egid", ge); kv_int("sgid", gs);
    } else {
        note_error("getresgid", errno);
    }
    gid_t groups[NGROUPS_MAX];
    int n = getgroups(NGROUPS_MAX, groups);
    if (n >= 0) {
        open_arr("groups");
        for (int i = 0; i < n; i++)
            item_int(groups[i]);
        close_arr();
    } else {
        note_error("getgroups", errno);
        kv_null("groups");
    }
    kv_int("pid", getpid());
    kv_int("ppid", getppid());
}

static void report_names(void)
{
    char buf[HOST_NAME_MAX + 2];
    if (gethostname(buf, sizeof buf) == 0) {
        buf[sizeof buf - 1] = 0;
        kv_str("hostname", buf);
    } else {
        note_error("gethostname", errno);
        kv_null("hostname");
    }
    if (getdomainname(buf, sizeof buf) == 0) {
        buf[sizeof buf - 1] = 0;
        kv_str("domainname", buf);
    } else {
        note_error("getdomainname", errno);
        kv_null("domainname");
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd))
        kv_str("cwd", cwd);
    else {
        note_error("getcwd", errno);
        kv_null("cwd");
    }
    mode_t old = umask(0);
    umask(old);
    kv_int("umask", old);
}

extern char **environ;

static void report_env(void)
{
    open_arr("env");
    for (char **e = environ; e && *e; e++)
        item_str(*e);
    close_arr();
}

static void report_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        note_error("/proc/self/fd", errno);
        kv_null("fds");
        return;
    }
    int self = dirfd(d);
    open_obj("fds");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (atoi(de->d_name) == self)
            continue;
        char path[300], target[PATH_MAX];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = 0;
        kv_str(de->d_name, target);
    }
    close_obj();
    closedir(d);
}

static const struct { const char *name; int res; } rlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void report_rlimits(void)
{
    open_obj("rlimits");
    for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(rlimits[i].res, &rl) != 0) {
            note_error(rlimits[i].name, errno);
            continue;
        }
        key(rlimits[i].name);
        printf_raw("[%llu,%llu]", (unsigned long long)rl.rlim_cur,
                   (unsigned long long)rl.rlim_max);
        need_comma = 1;
    }
    close_obj();
}

static const char *ns_names[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                 "time", "time_for_children", "user", "uts"};

static void report_ns(void)
{
    open_obj("ns");
    for (size_t i = 0; i < sizeof ns_names / sizeof ns_names[0]; i++) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/self/ns/%s", ns_names[i]);
        if (stat(path, &st) == 0)
            kv_uint(ns_names[i], (unsigned long long)st.st_ino);
        else if (errno != ENOENT) /* ENOENT: this kernel lacks the namespace type */
            note_error(path, errno);
        else if (access("/proc/self", F_OK) != 0)
            note_error(path, errno);
    }
    close_obj();
}

static void report_status(void)
{
    static const char *wanted[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                   "NoNewPrivs", "Seccomp", "Seccomp_filters", "Umask"};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        note_error("/proc/self/status", errno);
        kv_null("status");
        return;
    }
    open_obj("status");
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = 0;
        for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
            if (strcmp(line, wanted[i]) != 0)
                continue;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n")] = 0;
            kv_str(line, v);
        }
    }
    close_obj();
    fclose(f);
}

static void report_caps(void)
{
    struct cap_header h = {CAP_VERSION_3, 0};
    struct cap_data d[2];
    open_obj("caps");
    if (capget(&h, d) == 0) {
        kv_hex("effective", ((unsigned long long)d[1].effective << 32) | d[0].effective);
        kv_hex("permitted", ((unsigned long long)d[1].permitted << 32) | d[0].permitted);
        kv_hex("inheritable", ((unsigned long long)d[1].inheritable << 32) | d[0].inheritable);
    } else {
        note_error("capget", errno);
    }
    unsigned long long bnd = 0, amb = 0;
    for (int c = 0; c < 64; c++) {
        int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
        if (r < 0)
            break; /* EINVAL past the last capability this kernel knows */
        if (r)
            bnd |= 1ULL << c;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
            amb |= 1ULL << c;
    }
    kv_hex("bounding", bnd);
    kv_hex("ambient", amb);
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (nnp >= 0)
        kv_int("no_new_privs", nnp);
    else
        note_error("PR_GET_NO_NEW_PRIVS", errno);
    int sc = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    if (sc >= 0)
        kv_int("seccomp", sc);
    else
        note_error("PR_GET_SECCOMP", errno);
    close_obj();
}

/* mountinfo: ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER */
static void report_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) {
        note_error("/proc/self/mountinfo", errno);
        kv_null("mounts");
        return;
    }
    open_arr("mounts");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = 0;
        char *field[6], *save = NULL, *p = line;
        int n = 0;
        for (; n < 6; n++, p = NULL) {
            field[n] = strtok_r(p, " ", &save);
            if (!field[n])
                break;
        }
        if (n < 6)
            continue;
        char *tags = NULL, *tok;
        while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0)
            tags = tags ? tags : tok; /* optional fields: kept only as present/absent */
        char *fstype = strtok_r(NULL, " ", &save);
        char *source = strtok_r(NULL, " ", &save);
        char *super = strtok_r(NULL, " ", &save);
        open_obj(NULL);
        kv_int("id", atoi(field[0]));
        kv_int("parent", atoi(field[1]));
        kv_str("dev", field[2]);
        kv_str("root", field[3]);
        kv_str("mount_point", field[4]);
        kv_str("options", field[5]);
        kv_str("fstype", fstype ? fstype : "");
        kv_str("source", source ? source : "");
        kv_str("super_options", super ? super : "");
        close_obj();
    }
    free(line);
    close_arr();
    fclose(f);
}

/* ---- experiments ---- */

static int e_socket(int domain)
{
    int fd = socket(domain, SOCK_STREAM, 0);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static int c_socket_unix(void) { return e_socket(AF_UNIX); }
static int c_socket_inet(void) { return e_socket(AF_INET); }
static int c_socket_inet6(void) { return e_socket(AF_INET6); }

static int c_bind80(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80),
                            .sin_addr.s_addr = htonl(INADDR_ANY)};
    int r = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
    close(fd);
    return r;
}

static int c_statx(void)
{
    struct statx sx;
    return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx) == 0 ? 0 : errno;
}

static int c_mknod(void)
{
    /* a /dev/null twin in /tmp: needs CAP_MKNOD; removed again at once */
    const char *p = "/tmp/.probe-mknod";
    if (mknod(p, S_IFCHR | 0600, makedev(1, 3)) != 0)
        return errno;
    unlink(p);
    return 0;
}

static int c_sethostname(void)
{
    /* sets the name it already has: needs CAP_SYS_ADMIN but changes nothing even where it
     * is allowed (and it is only ever run in a container's own UTS namespace) */
    char buf[HOST_NAME_MAX + 1];
    if (gethostname(buf, sizeof buf) != 0)
        return errno;
    return sethostname(buf, strlen(buf)) == 0 ? 0 : errno;
}

static int c_setuid0(void) { return setuid(0) == 0 ? 0 : errno; }

static int c_chown(void)
{
    /* chown of a file it just made to another owner: needs CAP_CHOWN */
    const char *p = "/tmp/.probe-chown";
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return errno;
    close(fd);
    int r = chown(p, 4321, 4321) == 0 ? 0 : errno;
    unlink(p);
    return r;
}

static int c_getrandom(void)
{
    char b[8];
    return getentropy(b, sizeof b) == 0 ? 0 : errno;
}

static int c_mkdir(void)
{
    const char *p = "/tmp/.probe-mkdir";
    if (mkdir(p, 0700) != 0)
        return errno;
    rmdir(p);
    return 0;
}

static int c_close_range(void)
{
    /* a range with no open fd: closes nothing (Linux 5.9, beyond older allow-lists) */
    return close_range(1U << 30, (1U << 30) + 1, 0) == 0 ? 0 : errno;
}

static int c_pidfd_open(void)
{
    /* Linux 5.3; glibc's wrapper has no fallback, so a filter's errno shows as it is */
    int fd = pidfd_open(getpid(), 0);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static const struct { const char *name; int (*fn)(void); } calls[] = {
    {"socket_unix", c_socket_unix}, {"socket_inet", c_socket_inet},
    {"socket_inet6", c_socket_inet6}, {"bind80", c_bind80}, {"statx", c_statx},
    {"mknod", c_mknod}, {"sethostname", c_sethostname}, {"setuid0", c_setuid0},
    {"chown", c_chown}, {"getrandom", c_getrandom}, {"mkdir", c_mkdir},
    {"close_range", c_close_range}, {"pidfd_open", c_pidfd_open},
};

static void x_errno(int e) { kv_int("errno", e); }

static void x_call(const char *name)
{
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        if (strcmp(calls[i].name, name) == 0) {
            x_errno(calls[i].fn());
            return;
        }
    kv_str("error", "unknown call");
}

static void x_kill(const char *arg)
{
    int sig = atoi(arg);
    if (sig == SIGKILL || sig == SIGSTOP) {
        kv_str("error", "uncatchable signal");
        return;
    }
    if (sig > 0)
        signal(sig, SIG_IGN);
    x_errno(kill(getpid(), sig) == 0 ? 0 : errno);
}

static void x_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        x_errno(errno);
        return;
    }
    int e = write(fd, "probe\n", 6) == 6 ? 0 : errno;
    close(fd);
    x_errno(e);
}

static void x_openw(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        x_errno(errno);
        return;
    }
    close(fd);
    x_errno(0);
}

static void x_rw(const char *path)
{
    if (strncmp(path, "/dev/", 5) != 0) {
        kv_str("error", "rw= is only for paths under /dev/");
        return;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        x_errno(errno);
        return;
    }
    x_errno(0);
    unsigned char b = 'p';
    kv_int("write_errno", write(fd, &b, 1) == 1 ? 0 : errno);
    b = 0xff;
    ssize_t n = read(fd, &b, 1);
    kv_int("read_errno", n < 0 ? errno : 0);
    kv_int("read", n < 0 ? -1 : n);
    if (n == 1)
        kv_int("byte", b);
    close(fd);
}

/* Read fd until EOF or size bytes; *total says how many; returns 0 or the errno. */
static int read_up_to(int fd, char *buf, size_t size, size_t *total)
{
    for (;;) {
        ssize_t n = read(fd, buf + *total, size - *total);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0 || (*total += (size_t)n) == size)
            return 0;
    }
}

static void x_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        x_errno(errno);
        return;
    }
    static char buf[1 << 20];
    size_t total = 0;
    int e = read_up_to(fd, buf, sizeof buf, &total);
    close(fd);
    x_errno(e);
    kv_int("bytes", (long long)total);
    key("head");
    str_n(buf, total < 64 ? total : 64);
    need_comma = 1;
}

static void x_ls(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        x_errno(errno);
        return;
    }
    x_errno(0);
    open_arr("entries");
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            item_str(de->d_name);
    close_arr();
    closedir(d);
}

static void x_stat(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        x_errno(errno);
        return;
    }
    x_errno(0);
    kv_int("mode", st.st_mode);
    kv_int("uid", st.st_uid);
    kv_int("gid", st.st_gid);
    kv_int("major", major(st.st_rdev));
    kv_int("minor", minor(st.st_rdev));
    kv_int("size", st.st_size);
}

static void x_statfs(const char *path)
{
    struct statfs s;
    if (statfs(path, &s) != 0) {
        x_errno(errno);
        return;
    }
    x_errno(0);
    kv_uint("type", (unsigned long long)(unsigned long)s.f_type);
    kv_uint("bsize", (unsigned long long)s.f_bsize);
    kv_uint("blocks", (unsigned long long)s.f_blocks);
    kv_uint("flags", (unsigned long long)s.f_flags);
}

static void x_stdin(void)
{
    static char buf[65536];
    size_t total = 0;
    int e = read_up_to(0, buf, sizeof buf, &total);
    x_errno(e);
    key("text");
    str_n(buf, total);
    need_comma = 1;
}

static void x_err(const char *text)
{
    size_t n = strlen(text);
    int e = 0;
    if (write(2, text, n) != (ssize_t)n || write(2, "\n", 1) != 1)
        e = errno;
    x_errno(e);
}

static void x_sleep(const char *arg)
{
    struct timespec ts = {atoi(arg), 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    x_errno(0);
}

static void x_chmod(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        x_errno(errno);
        return;
    }
    if (S_ISLNK(st.st_mode)) {
        kv_str("error", "a symlink: chmod would follow it");
        return;
    }
    x_errno(chmod(path, st.st_mode & 07777) == 0 ? 0 : errno);
}

static void x_remount(const char *path)
{
    /* lift a bind mount's read-only flag: EPERM where the kernel locked it (a mount that
       came from a more privileged user namespace) */
    x_errno(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL) == 0 ? 0 : errno);
}

static void x_ifflags(const char *name)
{
    /* any socket reaches the interface ioctls: AF_UNIX when a filter refuses AF_INET */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        x_errno(errno);
        return;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int e = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 ? 0 : errno;
    close(fd);
    x_errno(e);
    if (e == 0)
        kv_int("flags", (unsigned short)ifr.ifr_flags);
}

static void x_i386(const char *nr)
{
#if defined(__x86_64__)
    /* in a child: a filter without SCMP_ARCH_X86 kills the caller, and the probe must go on */
    pid_t pid = fork();
    if (pid < 0) {
        x_errno(errno);
        return;
    }
    if (pid == 0) {
        long ret = atol(nr);
        __asm__ volatile("int $0x80" : "+a"(ret) : "b"(0), "c"(0), "d"(0) : "memory");
        _exit(ret < 0 && ret > -4096 ? (int)-ret : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        x_errno(0);
        kv_int("signal", WTERMSIG(status));
    } else {
        x_errno(WEXITSTATUS(status));
    }
#else
    (void)nr;
    x_errno(ENOSYS);
#endif
}

/* ---- sys=: what the seccomp filter does with a call, without running it ---- */

struct sys_shared {               /* in a MAP_SHARED page: written by the child */
    volatile int listener;        /* the child's notification fd, -1 until it exists */
    volatile int step;            /* a setup step that failed, or 0 */
    volatile int setup_errno;
    volatile int returned, call_errno;
    volatile int trapped, trap_data;
};

enum { STEP_NONE, STEP_MMAP, STEP_CLONE, STEP_SIGACTION, STEP_NNP, STEP_SECCOMP };
static const char *step_names[] = {"", "mmap", "clone", "sigaction", "no_new_privs",
                                   "seccomp"};

static struct sys_shared *sys_sh;
static long sys_nr;
static unsigned long long sys_args[6];
static char sys_stack[64 * 1024] __attribute__((aligned(16)));

/* the child's own last call must not be the one its filter hands over */
static void sys_child_exit(void)
{
    syscall(sys_nr == SYS_exit_group ? SYS_exit : SYS_exit_group, 0);
}

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    sys_sh->trap_data = info->si_errno; /* SECCOMP_RET_DATA of a TRAP */
    sys_sh->trapped = 1;
    sys_child_exit();
}

static int sys_child(void *unused)
{
    (void)unused;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        sys_sh->setup_errno = errno;
        sys_sh->step = STEP_SIGACTION;
        sys_child_exit();
    }
    /* seccomp(2) without CAP_SYS_ADMIN needs no_new_privs; this child is thrown away */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        sys_sh->setup_errno = errno;
        sys_sh->step = STEP_NNP;
        sys_child_exit();
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROBE_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)sys_nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      &prog);
    if (fd < 0) {
        sys_sh->setup_errno = errno;
        sys_sh->step = STEP_SECCOMP;
        sys_child_exit();
    }
    sys_sh->listener = (int)fd; /* the fd table is shared: the parent can use it */
    long r = syscall(sys_nr, sys_args[0], sys_args[1], sys_args[2], sys_args[3], sys_args[4],
                     sys_args[5]);
    sys_sh->call_errno = r < 0 ? errno : 0;
    sys_sh->returned = 1;
    sys_child_exit();
    return 0;
}

static void x_sys(const char *arg)
{
    char *end;
    sys_nr = strtol(arg, &end, 0);
    memset(sys_args, 0, sizeof sys_args);
    for (int i = 0; i < 6 && *end == ','; i++)
        sys_args[i] = strtoull(end + 1, &end, 0);
    if (*end || sys_nr < 0) {
        kv_str("error", "expected sys=NR[,A0,...,A5]");
        return;
    }
    if (!sys_sh) {
        void *p = mmap(NULL, sizeof *sys_sh, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            kv_str("action", "setup");
            x_errno(errno);
            kv_str("step", step_names[STEP_MMAP]);
            return;
        }
        sys_sh = p;
    }
    memset((void *)sys_sh, 0, sizeof *sys_sh);
    sys_sh->listener = -1;
    pid_t pid = clone(sys_child, sys_stack + sizeof sys_stack, CLONE_FILES | SIGCHLD, NULL);
    if (pid < 0) {
        kv_str("action", "setup");
        x_errno(errno);
        kv_str("step", step_names[STEP_CLONE]);
        return;
    }
    int notified = 0, status = 0, done = 0;
    for (int waited_ms = 0; !done && waited_ms < 5000;) {
        if (!notified && sys_sh->listener >= 0) {
            struct pollfd pfd = {sys_sh->listener, POLLIN, 0};
            if (poll(&pfd, 1, 10) > 0 && (pfd.revents & POLLIN)) {
                struct seccomp_notif req;
                memset(&req, 0, sizeof req);
                if (ioctl(sys_sh->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
                    /* the container's filter let it through: answer 0, never run it */
                    struct seccomp_notif_resp resp;
                    memset(&resp, 0, sizeof resp);
                    resp.id = req.id;
                    ioctl(sys_sh->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
                    notified = 1;
                }
            }
        } else {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        waited_ms += 10;
        done = waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (sys_sh->listener >= 0)
        close(sys_sh->listener);
    if (sys_sh->step) {
        kv_str("action", "setup");
        x_errno(sys_sh->setup_errno);
        kv_str("step", step_names[sys_sh->step]);
    } else if (notified) {
        kv_str("action", "allow");
        x_errno(0);
    } else if (sys_sh->trapped) {
        kv_str("action", "trap");
        x_errno(0);
        kv_int("data", sys_sh->trap_data);
    } else if (sys_sh->returned) {
        kv_str("action", "errno");
        x_errno(sys_sh->call_errno);
    } else if (!done) {
        kv_str("action", "timeout");
        x_errno(0);
    } else if (WIFSIGNALED(status)) {
        kv_str("action", WTERMSIG(status) == SIGSYS ? "kill" : "signal");
        x_errno(0);
        kv_int("signal", WTERMSIG(status));
    } else {
        kv_str("action", "signal"); /* exited without a word: not expected */
        x_errno(0);
        kv_int("signal", 0);
    }
}

/* ---- hold: report signals after the report ---- */

static volatile sig_atomic_t caught[65];

static void on_signal(int sig) { caught[sig] = 1; }

static void hold(long secs)
{
    static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM};
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&block, sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &block, &old);
    time_t end = secs >= 0 ? time(NULL) + secs : 0;
    for (;;) {
        for (int s = 1; s < 65; s++) {
            if (!caught[s])
                continue;
            caught[s] = 0;
            char line[32];
            int n = snprintf(line, sizeof line, "{\"signal\": %d}\n", s);
            if (write(1, line, (size_t)n) < 0)
                _exit(122);
        }
        if (secs >= 0 && time(NULL) >= end)
            return;
        struct timespec ts = {1, 0};
        /* wait with the signals unblocked; they are handled only here, never mid-write */
        sigset_t wait = old;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigdelset(&wait, sigs[i]);
        pselect(0, NULL, NULL, NULL, &ts, &wait);
    }
}

int main(int argc, char **argv)
{
    int exit_status = 0;
    long hold_secs = -2; /* -2: no hold */

    puts_raw("{");
    open_obj("results");
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        const char *eq = strchr(w, '=');
        size_t nlen = eq ? (size_t)(eq - w) : strlen(w);
        const char *arg = eq ? eq + 1 : "";
#define IS(s) (nlen == strlen(s) && strncmp(w, s, nlen) == 0)
        if (IS("exit")) {
            exit_status = atoi(arg);
            continue;
        }
        if (IS("hold")) {
            hold_secs = eq ? atol(arg) : -1;
            continue;
        }
        open_obj(w);
        if (IS("call"))
            x_call(arg);
        else if (IS("kill"))
            x_kill(arg);
        else if (IS("write"))
            x_write(arg);
        else if (IS("openw"))
            x_openw(arg);
        else if (IS("rw"))
            x_rw(arg);
        else if (IS("read"))
            x_read(arg);
        else if (IS("ls"))
            x_ls(arg);
        else if (IS("stat"))
            x_stat(arg);
        else if (IS("statfs"))
            x_statfs(arg);
        else if (IS("stdin"))
            x_stdin();
        else if (IS("err"))
            x_err(arg);
        else if (IS("sleep"))
            x_sleep(arg);
        else if (IS("chmod"))
            x_chmod(arg);
        else if (IS("remount"))
            x_remount(arg);
        else if (IS("ifflags"))
            x_ifflags(arg);
        else if (IS("i386"))
            x_i386(arg);
        else if (IS("sys"))
            x_sys(arg);
        else
            kv_str("error", "unknown word");
        close_obj();
#undef IS
    }
    close_obj();

    report_ids();
    report_names();
    report_env();
    report_fds();
    report_rlimits();
    report_ns();
    report_status();
    report_caps();
    report_mounts();

    open_obj("errors");
    char *save = NULL;
    for (char *l = strtok_r(errors, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(l, '\t');
        *tab = 0;
        kv_int(l, atoi(tab + 1));
    }
    close_obj();
    puts_raw("}\n");
    flush_out();

    if (hold_secs != -2)
        hold(hold_secs);
    return exit_status;
}
