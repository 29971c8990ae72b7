/* Directory-tree changes as a native filesystem makes them: renaming
 * directories with nested content, rename over existing entries, hard
 * links (one inode, two names), unlink and create again, rmdir after
 * emptying, readdir after each step, extended attributes kept.
 *
 *   overlay_ops              builds the tree in a scratch dir, then runs
 *   overlay_ops --build DIR  only builds the tree in DIR
 *   overlay_ops DIR          runs on a tree built before
 *
 * The overlay test builds the tree on the host first, so that in the
 * sandbox the whole tree lives in the overlay's LOWER layer (the host's
 * read-only /), and runs natively on a second copy. */
#include "common.h"
#include <sys/xattr.h>

static const char *base;

static const char *at(const char *rel)
{
    static char bufs[4][4300];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

static void put(const char *rel, const char *text)
{
    int fd = open(at(rel), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        printf("put %s err %s\n", rel, errno_name(errno));
        exit(91);
    }
    close(fd);
}

static void build(void)
{
    const char *dirs[] = {"a", "a/sub", "a/sub/deep", "e1", "e2", "ne", "r", "w", "ln", "mv", "mv/in", NULL};
    for (int i = 0; dirs[i]; i++)
        if (mkdir(at(dirs[i]), 0755) != 0) {
            printf("build mkdir %s err %s\n", dirs[i], errno_name(errno));
            exit(92);
        }
    put("a/x", "x");
    put("a/sub/y", "y");
    put("a/sub/deep/z", "z");
    put("a/sub/deep/z2", "z2");
    put("f1", "one");
    put("f2", "two");
    put("f3", "three");
    put("ne/k", "k");
    put("r/q1", "q1");
    put("r/q2", "q2");
    put("w/old", "old");
    put("ln/src", "src");
    put("mv/in/file", "in");
    if (symlink("../f1", at("a/sym")) != 0 || setxattr(at("f1"), "user.tag", "lower", 5, 0) != 0 ||
        setxattr(at("a/x"), "user.tag", "ax", 2, 0) != 0 || setxattr(at("a/sub"), "user.dir", "sub", 3, 0) != 0) {
        printf("build extras err %s\n", errno_name(errno));
        exit(93);
    }
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "ls REL: names..." sorted, with a type letter per entry, or the errno. */
static void ls(const char *rel)
{
    DIR *d = opendir(at(rel));
    if (!d) {
        printf("ls %s err %s\n", rel, errno_name(errno));
        return;
    }
    char *names[128];
    int n = 0;
    struct dirent *e;
    int dots = 0;
    while ((e = readdir(d)) && n < 128) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            dots++;
            continue;
        }
        char *s = malloc(strlen(e->d_name) + 3);
        sprintf(s, "%s%s", e->d_name,
                e->d_type == DT_DIR ? "/" : e->d_type == DT_LNK ? "@" : e->d_type == DT_REG ? "" : "?");
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("ls %s (dots %d):", rel, dots);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void cat(const char *rel)
{
    char buf[256];
    int fd = open(at(rel), O_RDONLY);
    if (fd < 0) {
        printf("cat %s err %s\n", rel, errno_name(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    printf("cat %s = '%s'\n", rel, buf);
}

static void xa(const char *rel, const char *name)
{
    char buf[64];
    long n = getxattr(at(rel), name, buf, sizeof buf - 1);
    if (n < 0) {
        printf("xattr %s %s err %s\n", rel, name, errno_name(errno));
        return;
    }
    buf[n] = 0;
    printf("xattr %s %s = '%s'\n", rel, name, buf);
}

static ino_t ino(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0 ? st.st_ino : 0;
}

static long nlink(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0 ? (long)st.st_nlink : -1;
}

static void exists(const char *rel)
{
    struct stat st;
    T(rel, lstat(at(rel), &st));
}

static void append(const char *rel, const char *text)
{
    int fd = open(at(rel), O_WRONLY | O_APPEND);
    T("open_append", fd);
    if (fd >= 0) {
        V("append", write(fd, text, strlen(text)));
        close(fd);
    }
}

static void run(void)
{
    ls(".");

    /* A directory with nested content moves whole. */
    ino_t a_ino = ino("a"), sub_ino = ino("a/sub"), x_ino = ino("a/x");
    T("rename_a_b", rename(at("a"), at("b")));
    exists("a");
    ls(".");
    ls("b");
    ls("b/sub");
    ls("b/sub/deep");
    B("b_same_ino", ino("b") == a_ino);
    B("b_sub_same_ino", ino("b/sub") == sub_ino);
    B("b_x_same_ino", ino("b/x") == x_ino);
    cat("b/sub/deep/z");
    cat("b/sym");
    xa("b/x", "user.tag");
    xa("b/sub", "user.dir");
    append("b/sub/deep/z", "Z");
    cat("b/sub/deep/z");
    put("b/sub/new", "new");
    ls("b/sub");
    T("mkdir_a_again", mkdir(at("a"), 0755));
    ls("a");
    T("rmdir_a_again", rmdir(at("a")));
    /* A moved directory moves again, and into another lower directory. */
    T("rename_b_sub_to_ne", rename(at("b/sub"), at("ne/moved")));
    ls("b");
    ls("ne");
    ls("ne/moved");
    ls("ne/moved/deep");
    cat("ne/moved/new");
    T("rename_mv_in_to_e1", rename(at("mv/in"), at("e1/in")));
    ls("mv");
    ls("e1");
    ls("e1/in");
    E("rename_into_own_child", rename(at("b"), at("b/x2")), EINVAL);
    E("rename_b_to_missing_parent", rename(at("b"), at("nope/b")), ENOENT);

    /* Rename over existing entries. */
    T("rename_f2_over_f3", rename(at("f2"), at("f3")));
    exists("f2");
    cat("f3");
    E("rename_file_over_dir", rename(at("f3"), at("e2")), EISDIR);
    E("rename_dir_over_file", rename(at("e2"), at("f3")), ENOTDIR);
    E("rename_dir_over_nonempty", rename(at("e2"), at("ne")), ENOTEMPTY);
    T("mkdir_e3", mkdir(at("e3"), 0755));
    T("rename_e2_over_e3", rename(at("e2"), at("e3")));
    exists("e2");
    ls("e3");
    T("rename_mv_over_e3", rename(at("mv"), at("e3")));
    ls("e3");
    exists("mv");
    T("rename_same", rename(at("f1"), at("f1")));
    cat("f1");

    /* Hard links: one inode behind two names. */
    T("link_src_dst", link(at("ln/src"), at("ln/dst")));
    B("link_same_ino", ino("ln/src") == ino("ln/dst"));
    V("link_nlink_src", nlink("ln/src"));
    V("link_nlink_dst", nlink("ln/dst"));
    append("ln/dst", "+dst");
    cat("ln/src");
    append("ln/src", "+src");
    cat("ln/dst");
    ls("ln");
    T("unlink_src", unlink(at("ln/src")));
    V("link_nlink_after_unlink", nlink("ln/dst"));
    cat("ln/dst");
    ino_t f1_ino = ino("f1");
    T("link_f1_to_ln", link(at("f1"), at("ln/f1")));
    B("link_f1_same_ino", ino("ln/f1") == f1_ino && ino("f1") == f1_ino);
    V("link_f1_nlink", nlink("f1"));
    xa("ln/f1", "user.tag");
    T("setxattr_via_link", setxattr(at("ln/f1"), "user.more", "m", 1, 0));
    xa("f1", "user.more");
    E("link_over_existing", link(at("f1"), at("f3")), EEXIST);
    E("link_dir", link(at("ne"), at("ne2")), EPERM);
    T("rename_link_over_other", rename(at("ln/f1"), at("f1")));
    V("link_f1_nlink_after_rename", nlink("f1"));
    ls("ln");

    /* Unlink, then create the same name again. */
    T("unlink_old", unlink(at("w/old")));
    exists("w/old");
    ls("w");
    E("unlink_old_again", unlink(at("w/old")), ENOENT);
    put("w/old", "new");
    cat("w/old");
    ls("w");
    T("unlink_f1", unlink(at("f1")));
    exists("f1");
    T("mkdir_over_unlinked_file", mkdir(at("f1"), 0700));
    ls("f1");
    T("rmdir_f1", rmdir(at("f1")));

    /* rmdir after emptying a lower directory; the name again is empty. */
    E("rmdir_nonempty", rmdir(at("r")), ENOTEMPTY);
    T("unlink_q1", unlink(at("r/q1")));
    T("unlink_q2", unlink(at("r/q2")));
    ls("r");
    T("rmdir_r", rmdir(at("r")));
    exists("r");
    ls(".");
    T("mkdir_r", mkdir(at("r"), 0755));
    ls("r");
    exists("r/q1");
    put("r/fresh", "fresh");
    ls("r");
    E("rmdir_file", rmdir(at("f3")), ENOTDIR);
    E("unlink_dir", unlink(at("r")), EISDIR);

    /* Copy-up keeps the data and the attributes. */
    xa("b/x", "user.tag");
    append("b/x", "X");
    cat("b/x");
    xa("b/x", "user.tag");
    T("setxattr_bx", setxattr(at("b/x"), "user.new", "n", 1, 0));
    char lbuf[256];
    long n = listxattr(at("b/x"), lbuf, sizeof lbuf);
    V("listxattr_bx", n);

    /* renameat2: exchange two directories (lower ones with changes in
     * them), a file and a directory; RENAME_NOREPLACE. */
    ino_t ne_ino = ino("ne"), b2_ino = ino("b");
    T("exchange_dirs", renameat2(AT_FDCWD, at("ne"), AT_FDCWD, at("b"), RENAME_EXCHANGE));
    ls("ne");
    ls("b");
    ls("b/moved");
    B("exchange_inos", ino("ne") == b2_ino && ino("b") == ne_ino);
    T("exchange_file_dir", renameat2(AT_FDCWD, at("f3"), AT_FDCWD, at("w"), RENAME_EXCHANGE));
    ls("f3");
    cat("w");
    T("exchange_back", renameat2(AT_FDCWD, at("w"), AT_FDCWD, at("f3"), RENAME_EXCHANGE));
    cat("f3");
    ls("w");
    E("exchange_missing", renameat2(AT_FDCWD, at("f3"), AT_FDCWD, at("nope"), RENAME_EXCHANGE), ENOENT);
    E("noreplace_existing", renameat2(AT_FDCWD, at("f3"), AT_FDCWD, at("ln/dst"), RENAME_NOREPLACE), EEXIST);
    T("noreplace_new", renameat2(AT_FDCWD, at("f3"), AT_FDCWD, at("f4"), RENAME_NOREPLACE));
    exists("f3");
    cat("f4");
    E("both_flags", renameat2(AT_FDCWD, at("f4"), AT_FDCWD, at("f5"), RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
    ls(".");
}

int main(int argc, char **argv)
{
    guest_init();
    if (argc == 3 && !strcmp(argv[1], "--build")) {
        base = argv[2];
        build();
        return 0;
    }
    if (argc == 2) {
        base = argv[1];
    } else {
        base = guest_scratch(argc, argv);
        build();
    }
    run();
    if (argc != 2)
        guest_cleanup();
    printf("done\n");
    return 0;
}
