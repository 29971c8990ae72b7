/* Interface ioctls that need an AF_INET (or AF_UNIX) socket: the IPv4
 * address getters, which are AF_INET's (ENOTTY on other sockets), and
 * glibc's if_nametoindex/if_indextoname (which ask through a unix or inet
 * socket). Only lo is printed: the host has more interfaces. */
#include "common.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static void show(const char *what, int s, unsigned long req, const char *name, const char *given)
{
    struct ifreq r;
    memset(&r, 0x55, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
    if (given) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, given, &sin->sin_addr);
    }
    if (ioctl(s, req, &r) < 0) {
        printf("%s err %s\n", what, errno_name(errno));
        return;
    }
    printf("%s ok", what);
    for (int i = 0; i < 24; i++)
        printf("%s%02x", i ? "" : " ", ((unsigned char *)&r)[16 + i]);
    printf("\n");
}

int main(void)
{
    guest_init();
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    T("inet_socket", s);
    show("siocgifaddr", s, SIOCGIFADDR, "lo", NULL);
    show("siocgifaddr_matching", s, SIOCGIFADDR, "lo", "127.0.0.1");
    show("siocgifaddr_other_address", s, SIOCGIFADDR, "lo", "10.1.2.3");
    show("siocgifnetmask", s, SIOCGIFNETMASK, "lo", NULL);
    show("siocgifbrdaddr", s, SIOCGIFBRDADDR, "lo", NULL);
    show("siocgifdstaddr", s, SIOCGIFDSTADDR, "lo", NULL);
    show("siocgifaddr_alias", s, SIOCGIFADDR, "lo:9", NULL);
    show("siocgifaddr_nosuch", s, SIOCGIFADDR, "nosuch0", NULL);
    show("siocgifpflags", s, SIOCGIFPFLAGS, "lo", NULL);
    show("siocgifflags_inet", s, SIOCGIFFLAGS, "lo", NULL);
    E("siocgifaddr_efault", ioctl(s, SIOCGIFADDR, BADPTR), EFAULT);
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    show("siocgifaddr_inet6_socket", s6, SIOCGIFADDR, "lo", NULL);
    show("siocgifmtu_inet6_socket", s6, SIOCGIFMTU, "lo", NULL);
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("siocgifaddr_unix_socket", u, SIOCGIFADDR, "lo", NULL);
    show("siocgifindex_unix_socket", u, SIOCGIFINDEX, "lo", NULL);
    V("if_nametoindex_lo", if_nametoindex("lo"));
    V("if_nametoindex_nosuch", if_nametoindex("nosuch0"));
    char name[IF_NAMESIZE];
    P("if_indextoname_1 %s\n", if_indextoname(1, name) ? name : "(null)");
    close(s);
    close(s6);
    close(u);
    printf("done\n");
    return 0;
}
