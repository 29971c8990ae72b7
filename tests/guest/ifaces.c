/* The interface table as programs see it without netlink of their own:
 * getifaddrs(), if_nameindex(), the SIOCGIF* ioctls (on a netlink socket:
 * the device ioctls work on a socket of any family), and /proc/net.
 *
 * The host has more interfaces than the sandbox's lo: only lo's entries
 * are printed, and sizes that count interfaces are checked for shape. */
#include "common.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static const char *family_name(int f)
{
    switch (f) {
    case AF_INET: return "inet";
    case AF_INET6: return "inet6";
    case AF_PACKET: return "packet";
    default: return "other";
    }
}

static const char *addr_str(const struct sockaddr *sa)
{
    static char b[4][INET6_ADDRSTRLEN];
    static int next;
    char *o = b[next++ % 4];
    if (!sa)
        return "-";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, o, INET6_ADDRSTRLEN);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, o, INET6_ADDRSTRLEN);
    else
        snprintf(o, INET6_ADDRSTRLEN, "family%d", sa->sa_family);
    return o;
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_getifaddrs(void)
{
    struct ifaddrs *list;
    T("getifaddrs", getifaddrs(&list));
    char *lines[64];
    int n = 0;
    for (struct ifaddrs *i = list; i && n < 64; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "lo") != 0)
            continue;
        char *l = malloc(256);
        int fam = i->ifa_addr ? i->ifa_addr->sa_family : -1;
        if (fam == AF_INET || fam == AF_INET6)
            snprintf(l, 256, "ifaddr %s %s flags=%x addr=%s netmask=%s", i->ifa_name, family_name(fam),
                     i->ifa_flags, addr_str(i->ifa_addr), addr_str(i->ifa_netmask));
        else
            snprintf(l, 256, "ifaddr %s %s flags=%x data=%s", i->ifa_name, family_name(fam), i->ifa_flags,
                     i->ifa_data ? "yes" : "no");
        lines[n++] = l;
    }
    qsort(lines, n, sizeof lines[0], cmp_lines);
    for (int k = 0; k < n; k++) {
        printf("%s\n", lines[k]);
        free(lines[k]);
    }
    freeifaddrs(list);
}

static void test_nameindex(void)
{
    struct if_nameindex *ni = if_nameindex();
    B("if_nameindex", ni != NULL);
    int first_is_lo = ni && ni[0].if_index == 1 && strcmp(ni[0].if_name, "lo") == 0;
    B("if_nameindex_first_lo", first_is_lo);
    int count = 0;
    for (struct if_nameindex *p = ni; p && p->if_index; p++)
        count++;
    B("if_nameindex_some", count >= 1);
    if_freenameindex(ni);
}

/* An ifreq filled with a marker, so that what a getter leaves alone shows. */
static void prep(struct ifreq *r, const char *name)
{
    memset(r, 0x55, sizeof *r);
    snprintf(r->ifr_name, IFNAMSIZ, "%s", name);
}

static void dump_union(const char *what, const struct ifreq *r)
{
    printf("%s", what);
    for (int i = 0; i < 24; i++)
        printf("%02x", ((const unsigned char *)r)[16 + i]);
    printf("\n");
}

static void test_ioctls(void)
{
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct ifreq r;
    B("ifreq_is_40_bytes", sizeof r == 40);

    prep(&r, "lo");
    T("siocgifflags", ioctl(s, SIOCGIFFLAGS, &r));
    dump_union("flags ", &r);
    prep(&r, "lo");
    T("siocgifmtu", ioctl(s, SIOCGIFMTU, &r));
    dump_union("mtu ", &r);
    prep(&r, "lo");
    T("siocgifindex", ioctl(s, SIOCGIFINDEX, &r));
    dump_union("index ", &r);
    prep(&r, "lo");
    T("siocgifhwaddr", ioctl(s, SIOCGIFHWADDR, &r));
    dump_union("hwaddr ", &r);
    prep(&r, "lo");
    T("siocgiftxqlen", ioctl(s, SIOCGIFTXQLEN, &r));
    dump_union("txqlen ", &r);
    prep(&r, "lo");
    T("siocgifmetric", ioctl(s, SIOCGIFMETRIC, &r));
    dump_union("metric ", &r);
    prep(&r, "lo");
    T("siocgifmap", ioctl(s, SIOCGIFMAP, &r));
    dump_union("map ", &r);
    prep(&r, "lo:7");
    T("siocgifflags_alias", ioctl(s, SIOCGIFFLAGS, &r));
    P("alias_name_kept %s\n", r.ifr_name);
    prep(&r, "lo");
    E("siocgifslave_einval", ioctl(s, SIOCGIFSLAVE, &r), EINVAL);

    prep(&r, "nosuch0");
    E("siocgifflags_enodev", ioctl(s, SIOCGIFFLAGS, &r), ENODEV);
    E("siocgifindex_enodev", ioctl(s, SIOCGIFINDEX, &r), ENODEV);
    E("siocgifmtu_enodev", ioctl(s, SIOCGIFMTU, &r), ENODEV);
    memset(&r, 'l', sizeof r);
    E("siocgifflags_unterminated_enodev", ioctl(s, SIOCGIFFLAGS, &r), ENODEV);
    E("siocgifflags_efault", ioctl(s, SIOCGIFFLAGS, BADPTR), EFAULT);
    /* The IPv4 address ioctls are AF_INET's. */
    prep(&r, "lo");
    E("siocgifaddr_on_netlink_enotty", ioctl(s, SIOCGIFADDR, &r), ENOTTY);
    E("siocgifnetmask_on_netlink_enotty", ioctl(s, SIOCGIFNETMASK, &r), ENOTTY);
    E("siocgifbrdaddr_on_netlink_enotty", ioctl(s, SIOCGIFBRDADDR, &r), ENOTTY);

    prep(&r, "");
    r.ifr_ifindex = 1;
    T("siocgifname", ioctl(s, SIOCGIFNAME, &r));
    P("siocgifname_name %s\n", r.ifr_name);
    dump_union("name_union ", &r);
    r.ifr_ifindex = 999999;
    E("siocgifname_enodev", ioctl(s, SIOCGIFNAME, &r), ENODEV);
    r.ifr_ifindex = -1;
    E("siocgifname_negative_enodev", ioctl(s, SIOCGIFNAME, &r), ENODEV);
    E("siocgifname_efault", ioctl(s, SIOCGIFNAME, BADPTR), EFAULT);

    /* SIOCGIFCONF: the size, then lo's entry. */
    struct ifconf ic = { .ifc_len = 0, .ifc_buf = NULL };
    T("siocgifconf_size", ioctl(s, SIOCGIFCONF, &ic));
    B("siocgifconf_size_shape", ic.ifc_len >= 40 && ic.ifc_len % 40 == 0);
    struct ifreq reqs[16];
    memset(reqs, 0, sizeof reqs);
    ic.ifc_len = sizeof reqs;
    ic.ifc_req = reqs;
    T("siocgifconf", ioctl(s, SIOCGIFCONF, &ic));
    B("siocgifconf_len_shape", ic.ifc_len >= 40 && ic.ifc_len % 40 == 0);
    for (int i = 0; i < ic.ifc_len / 40; i++)
        if (!strcmp(reqs[i].ifr_name, "lo"))
            printf("ifconf lo family=%d addr=%s\n", reqs[i].ifr_addr.sa_family, addr_str(&reqs[i].ifr_addr));
    ic.ifc_len = 39;
    T("siocgifconf_too_small", ioctl(s, SIOCGIFCONF, &ic));
    V("siocgifconf_too_small_len", ic.ifc_len);
    ic.ifc_len = -8;
    T("siocgifconf_negative", ioctl(s, SIOCGIFCONF, &ic));
    V("siocgifconf_negative_len", ic.ifc_len);
    ic.ifc_len = 40;
    ic.ifc_buf = BADPTR;
    E("siocgifconf_bad_buffer", ioctl(s, SIOCGIFCONF, &ic), EFAULT);
    E("siocgifconf_efault", ioctl(s, SIOCGIFCONF, BADPTR), EFAULT);
    close(s);
}

/* /proc/net: the headers, and lo's lines. */
static char text[1 << 16];

static void show_file(const char *path, int header_lines, const char *lo_prefix)
{
    long n = read_file(path, text, sizeof text);
    if (n < 0) {
        printf("%s err %s\n", path, errno_name(errno));
        return;
    }
    int line = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"), line++) {
        if (line < header_lines)
            printf("%s header [%s]\n", path, l);
        else if (lo_prefix && strstr(l, lo_prefix))
            printf("%s lo [%s]\n", path, l);
    }
}

static void test_proc(void)
{
    char link[64] = { 0 };
    V("readlink_proc_net", readlink("/proc/net", link, sizeof link - 1));
    P("proc_net_target %s\n", link);
    struct stat st;
    T("stat_proc_self_net", stat("/proc/self/net", &st));
    B("proc_self_net_is_dir", S_ISDIR(st.st_mode));
    T("stat_proc_net_dev", stat("/proc/net/dev", &st));
    P("proc_net_dev_mode %o\n", st.st_mode & 07777);

    show_file("/proc/net/dev", 2, NULL);
    /* lo's counters move natively: the columns, not the numbers. */
    long n = read_file("/proc/self/net/dev", text, sizeof text);
    B("proc_self_net_dev", n > 0);
    char *lo = strstr(text, "    lo:");
    if (lo) {
        int fields = 0, numeric = 1;
        char *end = strchr(lo, '\n');
        if (end)
            *end = 0;
        for (char *f = strtok(lo + 7, " "); f; f = strtok(NULL, " ")) {
            fields++;
            for (char *c = f; *c; c++)
                numeric &= *c >= '0' && *c <= '9';
        }
        printf("dev lo fields=%d numeric=%d\n", fields, numeric);
    } else {
        printf("dev no lo line\n");
    }
    show_file("/proc/net/if_inet6", 0, " lo");
    show_file("/proc/net/route", 1, "lo\t");
    show_file("/proc/net/igmp", 1, NULL);
    show_file("/proc/net/igmp6", 0, " lo ");
    show_file("/proc/net/tcp", 1, NULL);
    show_file("/proc/net/tcp6", 1, NULL);
    show_file("/proc/net/udp", 1, NULL);
    show_file("/proc/net/udp6", 1, NULL);
    show_file("/proc/net/unix", 1, NULL);
    show_file("/proc/net/netlink", 1, NULL);
    /* ::1's route, without its reference count. */
    n = read_file("/proc/net/ipv6_route", text, sizeof text);
    for (char *l = strtok(text, "\n"); n > 0 && l; l = strtok(NULL, "\n")) {
        char dst[33], src[33], gw[33], dev[16];
        unsigned dlen, slen, metric, ref, use, flags;
        if (sscanf(l, "%32s %x %32s %x %32s %x %x %x %x %15s", dst, &dlen, src, &slen, gw, &metric, &ref, &use,
                   &flags, dev) == 10 &&
            !strcmp(dst, "00000000000000000000000000000001"))
            printf("ipv6_route ::1 %s/%x src %s/%x gw %s metric %x use %x flags %x dev %s\n", dst, dlen, src, slen,
                   gw, metric, use, flags, dev);
    }
    E("proc_net_nosuch", open("/proc/net/nosuch", O_RDONLY), ENOENT);
    E("proc_net_dev_write", open("/proc/net/dev", O_WRONLY), EACCES);
}

int main(void)
{
    guest_init();
    test_getifaddrs();
    test_nameindex();
    test_ioctls();
    test_proc();
    printf("done\n");
    return 0;
}
