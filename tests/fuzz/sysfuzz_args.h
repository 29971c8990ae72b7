/* sysfuzz's argument generators: one per kind of argument (see
 * sysfuzz_calls.h), and the structures some arguments point to (iovecs,
 * msghdrs with control messages, sockaddrs, pollfds, netlink requests,
 * timeouts). Included once, by sysfuzz.c, after the memory layout, the
 * randomness and the worker's descriptor table it uses. */
#ifndef SYSFUZZ_ARGS_H
#define SYSFUZZ_ARGS_H

/* Argument generators. `slot` is this argument's 4 KiB of the pool. */

static __thread uint64_t len_hint; /* the size of the last structure made */

static uint64_t gen_len(void)
{
    if (len_hint && chance(40))
        return len_hint;
    switch (below(12)) {
    case 0: return 0;
    case 1: case 2: return 1 + below(64);
    case 3: return 4096;
    case 4: return below(65536);
    case 5: return below(1 << 20);
    case 6: return 1UL << (31 + below(2));
    case 7: return (uint64_t)-1;
    case 8: return 0x7fffffffffffffffUL;
    case 9: return (uint64_t)-4096;
    case 10: return 0x7fffffff;
    default: return rnd();
    }
}

static uint64_t gen_ptr(void)
{
    switch (below(20)) {
    case 0: case 1: case 2: case 3: case 4: return RAND_AREA + below(RAND_LEN);
    case 5: case 6: return RAND_AREA + (below(RAND_LEN) & ~7UL);
    case 7: return POOL + POOL_LEN - below(64);           /* runs into the guard */
    case 8: return RO_PAGE + below(4096);
    case 9: return GUARD1 + below(4096);
    case 10: return EDGE_PAGE + 4096 - below(32);         /* runs into the hole */
    case 11: return HOLE + below(4096);
    case 12: case 13: return 0;
    case 14: return 0xffffffff81000000UL + below(1 << 20); /* the kernel's */
    case 15: return 0x0000800000000000UL - below(16);     /* non-canonical */
    case 16: return 0x8000000000000000UL;
    case 17: return (uint64_t)(uintptr_t)&gen_ptr;         /* our code: read-only */
    case 18: return high_addr + (below(0x20000000) & ~0xfffUL); /* the stub's region */
    default: return rnd();
    }
}

static uint64_t gen_fd(void)
{
    switch (below(20)) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10:
        return nfds ? (uint64_t)fds[below(nfds)] : 0;
    case 11: case 12: return recent_fd[below(8)];
    case 13: return below(40);
    case 14: return (uint64_t)-1;
    case 15: return (uint64_t)(long)-100; /* AT_FDCWD */
    case 16: return 1024 + below(3) - 1;
    case 17: return 0x7fffffff;
    case 18: return (uint64_t)(long)(int)0x80000000;
    default: return rnd();
    }
}

static uint64_t gen_flags(void)
{
    switch (below(6)) {
    case 0: return 0;
    case 1: return rnd() & 0xffffffff;
    case 2: return rnd();
    default: {
        uint64_t f = 0;
        int n = 1 + (int)below(4);
        for (int i = 0; i < n; i++)
            f |= 1UL << below(32);
        return f;
    }
    }
}

static uint64_t gen_int(void)
{
    switch (below(8)) {
    case 0: case 1: case 2: case 3: return below(16);
    case 4: return below(1100);
    case 5: return (uint64_t)-(long)below(3);
    case 6: return 0x80000000UL + below(2);
    default: return rnd();
    }
}

static uint64_t gen_pid(void)
{
    switch (below(10)) {
    case 0: case 1: case 2: return raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    case 3: return 0;
    case 4: case 5: return recent_pid[below(8)];
    case 6: return below(64);
    case 7: return (uint64_t)-(long)below(100);
    case 8: return 0x7fffffff;
    default: return rnd();
    }
}

static uint64_t gen_signal(void)
{
    switch (below(4)) {
    case 0: return below(32);
    case 1: case 2: return below(66);
    default: return rnd();
    }
}

static uint64_t gen_uid(void)
{
    static const uint64_t v[] = {0, 1, 1000, 65534, 0xffffffff, 0xfffffffe, 0x10000};
    return chance(80) ? v[below(7)] : rnd();
}

static uint64_t gen_mode(void)
{
    static const uint64_t types[] = {0, 0100000, 0040000, 0020000, 0060000, 0010000, 0140000, 0120000, 0170000};
    return types[below(9)] | below(010000);
}

static uint64_t gen_addr(void)
{
    switch (below(12)) {
    case 0: case 1: case 2: case 3: case 4: return SCRATCH + (below(SCRATCH_LEN) & ~0xfffUL);
    case 5: return SCRATCH + below(SCRATCH_LEN);
    case 6: return 0;
    case 7: return below(MIN_ADDR);
    case 8: return high_addr + (below(0x20000000) & ~0xfffUL);
    case 9: return 0x0000800000000000UL - 4096 * below(4);
    case 10: return HOLE;
    default: return rnd() & ~0xfffUL;
    }
}

/* An address the memory calls may touch: our code, data, pool and stack
 * stay out of reach (only the scratch area, the hole, the lowest pages
 * and everything from the stub region up). */
static uint64_t safe_addr(uint64_t a)
{
    if (a < MIN_ADDR || a >= high_addr)
        return a;
    if (a >= SCRATCH && a < SCRATCH + SCRATCH_LEN)
        return a;
    if (a >= HOLE && a < HOLE + 4096)
        return a;
    return SCRATCH + (a & (SCRATCH_LEN - 1));
}

static void fill_random(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)rnd();
}

static uint64_t gen_path(char *slot)
{
    if (chance(5))
        return gen_ptr();
    const char *p = paths[below(NPATHS)];
    size_t n = strlen(p);
    memcpy(slot, p, n + 1);
    if (chance(10)) {
        /* A long component or a long path. */
        size_t extra = chance(50) ? 255 + below(3) : 4000 + below(200);
        if (extra > SLOT_LEN - n - 2)
            extra = SLOT_LEN - n - 2;
        slot[n] = '/';
        memset(slot + n + 1, chance(50) ? 'x' : '.', extra);
        slot[n + 1 + extra] = 0;
        if (chance(50))
            for (size_t i = n + 1; i + 3 < n + 1 + extra; i += 3)
                slot[i + 2] = '/';
    } else if (chance(10)) {
        slot[below(n + 1)] = (char)rnd();
    } else if (chance(5)) {
        /* No terminating NUL before the end of the mapping. */
        char *end = (char *)(POOL + POOL_LEN) - n;
        memcpy(end, p, n);
        return (uint64_t)(uintptr_t)end;
    }
    return (uint64_t)(uintptr_t)slot;
}

static void gen_timeout(uint64_t *t)
{
    for (int i = 0; i < 4; i++) {
        switch (below(8)) {
        case 0: case 1: t[i] = 0; break;
        case 2: t[i] = 1; break;
        case 3: t[i] = below(1000); break;
        case 4: t[i] = below(1000000000); break;
        case 5: t[i] = 999999999 + below(3); break;
        case 6: t[i] = (uint64_t)-1; break;
        default:
            t[i] = chance(50) ? 0x7fffffffffffffffUL : rnd();
        }
    }
}

static uint64_t gen_sockaddr(char *slot)
{
    memset(slot, 0, 128);
    unsigned short *fam = (unsigned short *)slot;
    switch (below(8)) {
    case 0: {
        struct sockaddr_un *u = (struct sockaddr_un *)slot;
        u->sun_family = AF_UNIX;
        strcpy(u->sun_path, chance(50) ? "/tmp/sysfuzz/sock" : "/tmp/sysfuzz/s2");
        len_hint = chance(50) ? sizeof *u : 2 + strlen(u->sun_path) + below(2);
        break;
    }
    case 1: {
        struct sockaddr_un *u = (struct sockaddr_un *)slot;
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, "\0sysfuzz", 8);
        len_hint = 2 + below(12);
        break;
    }
    case 2: case 3: {
        struct sockaddr_in *a = (struct sockaddr_in *)slot;
        a->sin_family = AF_INET;
        a->sin_port = htons(chance(50) ? listen_port : (uint16_t)below(65536));
        a->sin_addr.s_addr = chance(70) ? htonl(0x7f000001) : (chance(50) ? 0 : (uint32_t)rnd());
        len_hint = chance(80) ? sizeof *a : below(20);
        break;
    }
    case 4: {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)slot;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(chance(50) ? listen_port : (uint16_t)below(65536));
        if (chance(60))
            a->sin6_addr.s6_addr[15] = 1;
        else if (chance(50))
            fill_random(&a->sin6_addr, 16);
        a->sin6_scope_id = chance(80) ? 0 : (uint32_t)rnd();
        len_hint = chance(80) ? sizeof *a : below(32);
        break;
    }
    case 5: {
        struct sockaddr_nl *n = (struct sockaddr_nl *)slot;
        n->nl_family = AF_NETLINK;
        n->nl_pid = chance(50) ? 0 : (uint32_t)rnd();
        n->nl_groups = chance(50) ? 0 : (uint32_t)rnd();
        len_hint = chance(80) ? sizeof *n : below(16);
        break;
    }
    case 6:
        *fam = AF_UNSPEC;
        len_hint = below(20);
        break;
    default:
        fill_random(slot, 128);
        len_hint = below(140);
    }
    if (chance(5))
        len_hint = gen_len();
    return (uint64_t)(uintptr_t)slot;
}

/* iovecs at `at`, n of them, pointing anywhere. */
static uint64_t gen_iovecs(char *at, int n)
{
    struct iovec *v = (struct iovec *)at;
    for (int i = 0; i < n; i++) {
        v[i].iov_base = (void *)gen_ptr();
        v[i].iov_len = chance(70) ? below(512) : gen_len();
    }
    len_hint = (uint64_t)n;
    return (uint64_t)(uintptr_t)at;
}

/* A netlink request, so sends on a netlink socket reach its parser. */
static size_t gen_netlink(char *at, size_t room)
{
    size_t used = 0;
    int n = 1 + (int)below(3);
    for (int i = 0; i < n && used + 64 <= room; i++) {
        struct nlmsghdr *h = (struct nlmsghdr *)(at + used);
        size_t body = below(48);
        h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + body);
        if (chance(10))
            h->nlmsg_len = (uint32_t)rnd();
        static const uint16_t types[] = {RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_NEWLINK, RTM_NEWADDR,
                                         RTM_DELADDR, RTM_GETRULE, RTM_GETNETCONF, NLMSG_NOOP, NLMSG_DONE, 0};
        h->nlmsg_type = chance(85) ? types[below(11)] : (uint16_t)rnd();
        h->nlmsg_flags = (uint16_t)(chance(70) ? (NLM_F_REQUEST | (chance(50) ? NLM_F_DUMP : NLM_F_ACK)) : rnd());
        h->nlmsg_seq = (uint32_t)i;
        h->nlmsg_pid = 0;
        char *b = (char *)NLMSG_DATA(h);
        fill_random(b, body);
        /* Attributes with plausible headers inside the body. */
        for (size_t off = 16; off + 4 <= body; off += 4 + below(12)) {
            unsigned short *nla = (unsigned short *)(b + off);
            nla[0] = (unsigned short)(chance(80) ? 4 + below(12) : rnd());
            nla[1] = (unsigned short)below(40);
        }
        used += NLMSG_ALIGN(NLMSG_HDRLEN + body);
    }
    return used;
}

/* Control messages: rights (of real descriptors or not), credentials,
 * others, with honest or lying lengths. */
static size_t gen_cmsgs(char *at, size_t room)
{
    size_t used = 0;
    int n = (int)below(4);
    for (int i = 0; i < n && used + 64 <= room; i++) {
        struct cmsghdr *c = (struct cmsghdr *)(at + used);
        size_t data = 0;
        switch (below(4)) {
        case 0: {
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            int k = (int)below(5);
            for (int j = 0; j < k; j++)
                ((int *)CMSG_DATA(c))[j] = (int)gen_fd();
            data = 4 * (size_t)k;
            break;
        }
        case 1: {
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_CREDENTIALS;
            int *cr = (int *)CMSG_DATA(c);
            cr[0] = chance(50) ? (int)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0) : (int)rnd();
            cr[1] = (int)gen_uid();
            cr[2] = (int)gen_uid();
            data = 12;
            break;
        }
        default:
            c->cmsg_level = chance(50) ? (int)below(300) : (int)rnd();
            c->cmsg_type = (int)below(80);
            data = below(32);
            fill_random(CMSG_DATA(c), data);
        }
        c->cmsg_len = chance(85) ? CMSG_LEN(data) : gen_len();
        used += CMSG_SPACE(data);
    }
    return used;
}

static uint64_t gen_msghdr(char *slot, struct msghdr *m)
{
    memset(m, 0, sizeof *m);
    char *names = slot + 256, *iov = slot + 512, *ctl = slot + 1024, *data = slot + 2048;
    if (chance(40)) {
        m->msg_name = (void *)gen_sockaddr(names);
        m->msg_namelen = (socklen_t)len_hint;
    } else if (chance(20)) {
        m->msg_name = (void *)gen_ptr();
        m->msg_namelen = (socklen_t)gen_len();
    }
    int n = (int)below(5);
    m->msg_iov = (struct iovec *)gen_iovecs(iov, n);
    if (n && chance(40)) {
        /* One real buffer, sometimes holding netlink requests. */
        m->msg_iov[0].iov_base = data;
        m->msg_iov[0].iov_len = chance(50) ? gen_netlink(data, 1024) : below(1024);
    }
    m->msg_iovlen = chance(90) ? (size_t)n : gen_len();
    if (chance(40)) {
        m->msg_control = ctl;
        m->msg_controllen = gen_cmsgs(ctl, 1024);
        if (chance(10))
            m->msg_controllen = gen_len();
    } else if (chance(10)) {
        m->msg_control = (void *)gen_ptr();
        m->msg_controllen = gen_len();
    }
    m->msg_flags = (int)gen_flags();
    return (uint64_t)(uintptr_t)m;
}

/* One argument of kind `k`, built in `slot` when it needs memory. */
static uint64_t gen_arg(char k, char *slot)
{
    if (k != 'g' && chance(8))
        k = 'g'; /* the wrong kind now and then */
    switch (k) {
    case 'f': return gen_fd();
    case 'p':
        if (chance(30)) {
            if (chance(30)) {
                len_hint = gen_netlink(slot, SLOT_LEN);
            } else {
                len_hint = below(256);
                fill_random(slot, len_hint);
            }
            return (uint64_t)(uintptr_t)slot;
        }
        return gen_ptr();
    case 's': return gen_path(slot);
    case 'l': return gen_len();
    case 'x': return gen_flags();
    case 'i': return gen_int();
    case 'n': return gen_pid();
    case 'a': return gen_addr();
    case 'u': return gen_uid();
    case 'm': return gen_mode();
    case 'c': return gen_signal();
    case 't':
        /* A bad pointer now and then (random bytes make huge timeouts). */
        if (chance(10))
            return chance(50) ? 0 : gen_ptr();
        gen_timeout((uint64_t *)slot);
        return (uint64_t)(uintptr_t)slot;
    case 'k':
        if (chance(10))
            return chance(50) ? 0 : gen_ptr();
        *(uint64_t *)slot = rnd() & ~(1UL << (SIGALRM - 1));
        len_hint = 8;
        return (uint64_t)(uintptr_t)slot;
    case 'v':
        if (chance(10))
            return gen_ptr();
        return gen_iovecs(slot, (int)below(9));
    case 'M':
        if (chance(10))
            return gen_ptr();
        return gen_msghdr(slot, (struct msghdr *)(slot + 3072));
    case 'W': {
        if (chance(10))
            return gen_ptr();
        /* Up to 2 mmsghdrs, each with its own msghdr parts. */
        struct mmsghdr *mm = (struct mmsghdr *)(slot + 3840);
        int n = 1 + (int)below(2);
        for (int i = 0; i < n; i++) {
            /* The second one's parts in the next slot (an int argument's). */
            gen_msghdr(slot + i * SLOT_LEN, &mm[i].msg_hdr);
            mm[i].msg_len = 0;
        }
        len_hint = (uint64_t)n;
        return (uint64_t)(uintptr_t)mm;
    }
    case 'o':
        if (chance(10))
            return gen_ptr();
        return gen_sockaddr(slot);
    case 'q': {
        if (chance(10))
            return gen_ptr();
        int n = (int)below(6);
        struct pollfd *p = (struct pollfd *)slot;
        for (int i = 0; i < n; i++) {
            p[i].fd = (int)gen_fd();
            p[i].events = (short)(chance(70) ? (POLLIN | POLLOUT) : rnd());
            p[i].revents = 0;
        }
        len_hint = (uint64_t)n;
        return (uint64_t)(uintptr_t)slot;
    }
    case 'e': {
        if (chance(10))
            return gen_ptr();
        struct epoll_event *e = (struct epoll_event *)slot;
        e->events = (uint32_t)(chance(50) ? (EPOLLIN | EPOLLOUT | (chance(30) ? EPOLLET : 0)) : rnd());
        e->data.u64 = rnd();
        len_hint = 1 + below(8);
        return (uint64_t)(uintptr_t)slot;
    }
    default:
        switch (below(5)) {
        case 0: return gen_int();
        case 1: return gen_ptr();
        case 2: return gen_len();
        case 3: return gen_fd();
        default: return rnd();
        }
    }
}

/* The number of call i. */
static long gen_nr(void)
{
    long nr;
    switch (below(40)) {
    case 0: return 451 + (long)below(600);                 /* above the table */
    case 1: return 0x40000000L | (long)below(548);          /* x32 numbers */
    case 2: return chance(50) ? -1L : (long)rnd();
    case 3: case 4: return (long)below(460);                /* anything in range */
    default:
        do
            nr = (long)below(460);
        while (!kinds[nr]);
        return nr;
    }
}

#endif
