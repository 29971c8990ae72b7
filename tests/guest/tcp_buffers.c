/* What SO_SNDBUF and SO_RCVBUF bound on a loopback TCP connection: a
 * writer facing a peer that does not read stops (EAGAIN) after about its
 * send buffer plus the peer's window when either was set, after
 * megabytes when neither was (autotuning); and once the peer has closed,
 * the writer's sends fail within that bound instead of swallowing
 * everything. Sizes vary by kernel: print only ranges.
 */
#include "common.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

static int listener(int rcvbuf)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0)
        return -1;
    if (rcvbuf && setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
        return -1;
    return l;
}

/* Connect to l; *srv gets the accepted end. */
static int pair(int l, int sndbuf, int *srv)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || getsockname(l, (struct sockaddr *)&a, &n) != 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    *srv = accept(l, NULL, NULL);
    if (*srv < 0)
        return -1;
    if (sndbuf && setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
        return -1;
    return c;
}

/* Non-blocking sends of `chunk` bytes until EAGAIN (or an error). */
static long fill(int c, size_t chunk, int *err)
{
    static char buf[65536];
    long total = 0;
    *err = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t k = send(c, buf, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
            *err = errno;
            break;
        }
        total += k;
    }
    return total;
}

static void bounded(const char *name, int snd, int rcv, long lo, long hi)
{
    int l = listener(rcv), s = -1;
    int c = l < 0 ? -1 : pair(l, snd, &s);
    if (c < 0) {
        printf("%s setup err %s\n", name, errno_name(errno));
        return;
    }
    int err;
    long got = fill(c, 512, &err);
    printf("%s %s %s\n", name, err == EAGAIN ? "eagain" : errno_name(err), got >= lo && got <= hi ? "in_range" : "out_of_range");
    if (getenv("TCP_BUFFERS_DEBUG"))
        fprintf(stderr, "%s: %ld\n", name, got);
    close(c);
    close(s);
    close(l);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    bounded("both_4k", 4096, 4096, 4096, 32768);
    bounded("snd_4k", 4096, 0, 16384, 262144);
    bounded("rcv_4k", 0, 4096, 1 << 20, 8 << 20);
    bounded("both_64k", 65536, 65536, 131072, 393216);
    bounded("neither", 0, 0, 1 << 20, 16 << 20);

    /* The peer reads a little, then closes with nothing unread: the
     * writer's later sends fail (ECONNRESET or EPIPE) within its buffer. */
    int l = listener(4096), s = -1;
    int c = pair(l, 4096, &s);
    T("close_setup", c);
    char b[1024];
    int err;
    long before = fill(c, 512, &err);
    B("filled", before > 0 && err == EAGAIN);
    long drained = 0;
    ssize_t k;
    while ((k = recv(s, b, sizeof b, MSG_DONTWAIT)) > 0)
        drained += k;
    B("drained_all", drained == before);
    T("peer_close", close(s));
    long after = 0;
    int failed = 0;
    static char big[65536];
    for (int i = 0; i < 64 && !failed; i++) {
        k = send(c, big, sizeof big, MSG_NOSIGNAL);
        if (k < 0)
            failed = errno;
        else
            after += k;
    }
    B("send_fails_after_close", failed == ECONNRESET || failed == EPIPE);
    B("accepted_after_close_bounded", after <= 65536);
    close(c);
    close(l);
    printf("done\n");
    return 0;
}
