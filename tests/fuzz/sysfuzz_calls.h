/* What sysfuzz knows about each system call (x86-64 numbers): the kind
 * of each argument, and the calls that need care. */
#ifndef SYSFUZZ_CALLS_H
#define SYSFUZZ_CALLS_H

#include <sys/syscall.h>

/* Argument kinds, one letter per argument of each call we know:
 *   f fd            p pointer        s path          l length
 *   x flag bits     i small int      n pid           a address (memory calls)
 *   u uid/gid       m mode           c signal        t timeout struct pointer
 *   k sigset ptr    v iovec array    M msghdr        W mmsghdr array
 *   o sockaddr      q pollfd array   e epoll_event   g anything
 * Unknown numbers get "gggggg". */

static const char *kinds[460] = {
    [0] = "fpl", [1] = "fpl", [2] = "sxm", [3] = "f", [4] = "sp", [5] = "fp", [6] = "sp",
    [7] = "qii", [8] = "fgi", [9] = "alxxfg", [10] = "alx", [11] = "al", [12] = "a",
    [13] = "cppl", [14] = "ikkl", [15] = "", [16] = "fxp", [17] = "fplg", [18] = "fplg",
    [19] = "fvi", [20] = "fvi", [21] = "sx", [22] = "p", [23] = "ipppt", [24] = "",
    [25] = "allxa", [26] = "alx", [27] = "alp", [28] = "ali", [29] = "gli", [30] = "gax",
    [31] = "gip", [32] = "f", [33] = "ff", [34] = "", [35] = "tp", [36] = "ip", [37] = "i",
    [38] = "itp", [39] = "", [40] = "ffpl", [41] = "ixi", [42] = "fol", [43] = "fpp",
    [44] = "fplxol", [45] = "fplxpp", [46] = "fMx", [47] = "fMx", [48] = "fi", [49] = "fol",
    [50] = "fi", [51] = "fpp", [52] = "fpp", [53] = "ixip", [54] = "fiipl", [55] = "fiipp",
    [56] = "xpppg", [57] = "", [58] = "", [59] = "spp", [61] = "npxp", [62] = "nc",
    [63] = "p", [64] = "gix", [65] = "gpl", [66] = "giig", [67] = "a", [68] = "gx",
    [69] = "gplx", [70] = "gplgx", [71] = "gip", [72] = "fig", [73] = "fx", [74] = "f",
    [75] = "f", [76] = "sl", [77] = "fl", [78] = "fpl", [79] = "pl", [80] = "s", [81] = "f",
    [82] = "ss", [83] = "sm", [84] = "s", [85] = "sm", [86] = "ss", [87] = "s", [88] = "ss",
    [89] = "spl", [90] = "sm", [91] = "fm", [92] = "suu", [93] = "fuu", [94] = "suu",
    [95] = "m", [96] = "pp", [97] = "ip", [98] = "ip", [99] = "p", [100] = "p",
    [101] = "inpp", [102] = "", [103] = "ipl", [104] = "", [105] = "u", [106] = "u",
    [107] = "", [108] = "", [109] = "nn", [110] = "", [111] = "", [112] = "", [113] = "uu",
    [114] = "uu", [115] = "ip", [116] = "ip", [117] = "uuu", [118] = "ppp", [119] = "uuu",
    [120] = "ppp", [121] = "n", [122] = "u", [123] = "u", [124] = "n", [125] = "pp",
    [126] = "pp", [127] = "pl", [128] = "kptl", [129] = "ncp", [130] = "kl", [131] = "pp",
    [132] = "sp", [133] = "smx", [134] = "s", [135] = "x", [136] = "gp", [137] = "sp",
    [138] = "fp", [139] = "igg", [140] = "in", [141] = "ini", [142] = "np", [143] = "np",
    [144] = "nip", [145] = "n", [146] = "i", [147] = "i", [148] = "np", [149] = "al",
    [150] = "al", [151] = "x", [152] = "", [153] = "", [154] = "ipl", [155] = "ss",
    [156] = "p", [157] = "iggggg", [158] = "ip", [159] = "p", [160] = "ip", [161] = "s",
    [162] = "", [163] = "s", [164] = "pp", [165] = "sssxp", [166] = "sx", [167] = "sx",
    [168] = "s", [169] = "gggp", [170] = "pl", [171] = "pl", [172] = "i", [173] = "gli",
    [186] = "", [187] = "fgl", [188] = "sspli", [189] = "sspli", [190] = "fspli",
    [191] = "sspl", [192] = "sspl", [193] = "fspl", [194] = "spl", [195] = "spl",
    [196] = "fpl", [197] = "ss", [198] = "ss", [199] = "fs", [200] = "nc", [201] = "p",
    [202] = "pigtpi", [203] = "nlp", [204] = "nlp", [205] = "p", [206] = "ip", [207] = "g",
    [208] = "giipt", [209] = "gip", [210] = "gpp", [211] = "p", [213] = "i", [216] = "alxxx",
    [217] = "fpl", [218] = "p", [219] = "", [220] = "gpit", [221] = "fgli", [222] = "ipp",
    [223] = "gxtp", [224] = "gp", [225] = "g", [226] = "g", [227] = "ip", [228] = "ip",
    [229] = "ip", [230] = "ixtp", [232] = "feii", [233] = "fife", [234] = "nnc", [235] = "sp",
    [237] = "alipgx", [238] = "ipl", [239] = "ppgax", [240] = "sxmp", [241] = "s",
    [242] = "gplit", [243] = "gplpt", [244] = "gp", [245] = "gpp", [246] = "glpx",
    [247] = "inpxp", [248] = "sspli", [249] = "sssi", [250] = "iggg", [251] = "iii",
    [252] = "ii", [253] = "", [254] = "fsx", [255] = "fi", [256] = "nlpp", [257] = "fsxm",
    [258] = "fsm", [259] = "fsmx", [260] = "fsuux", [261] = "fsp", [262] = "fspx",
    [263] = "fsx", [264] = "fsfs", [265] = "fsfsx", [266] = "sfs", [267] = "fspl",
    [268] = "fsm", [269] = "fsx", [270] = "ipppt", [271] = "qitkl", [272] = "x",
    [273] = "pl", [274] = "npp", [275] = "fpfplx", [276] = "fflx", [277] = "fllx",
    [278] = "fvix", [279] = "nlppx", [280] = "fspx", [281] = "feiikl", [282] = "fkl",
    [283] = "ix", [284] = "i", [285] = "fill", [286] = "fxtp", [287] = "fp", [288] = "fppx",
    [289] = "fklx", [290] = "ix", [291] = "x", [292] = "ffx", [293] = "px", [294] = "x",
    [295] = "fvig", [296] = "fvig", [297] = "nncp", [298] = "pnifx", [299] = "fWixt",
    [300] = "xx", [301] = "fxxfs", [302] = "nipp", [303] = "fsppx", [304] = "fpx",
    [305] = "ip", [306] = "f", [307] = "fWix", [308] = "fx", [309] = "ppp",
    [310] = "nvlvlx", [311] = "nvlvlx", [312] = "nnigg", [313] = "fsx", [314] = "npx",
    [315] = "nplx", [316] = "fsfsx", [317] = "ixp", [318] = "plx", [319] = "sx",
    [320] = "ffgsx", [321] = "ipl", [322] = "fsppx", [323] = "x", [324] = "ix",
    [325] = "alx", [326] = "fpfplx", [327] = "fvigx", [328] = "fvigx", [329] = "alxi",
    [330] = "xx", [331] = "i", [332] = "fsxxp", [333] = "giippt", [334] = "plxx",
    [424] = "fcpx", [425] = "ip", [426] = "fiixpl", [427] = "fipi", [428] = "fsx",
    [429] = "fsfsx", [430] = "sx", [431] = "fissi", [432] = "fxx", [433] = "fsx",
    [434] = "nx", [435] = "pl", [436] = "iix", [437] = "fspl", [438] = "ffx", [439] = "fsxx",
    [440] = "fvlxx", [441] = "feitkl", [442] = "fsxpl", [443] = "fipp", [444] = "plx",
    [445] = "fipx", [446] = "fx", [447] = "x", [448] = "fx", [449] = "pxxti", [450] = "allx",
};

/* Calls that end the worker for certain: never made. */
static int never(long nr) { return nr == SYS_exit || nr == SYS_exit_group; }

static int is_clone(long nr) { return nr == SYS_clone || nr == SYS_fork || nr == SYS_vfork || nr == 435; }

/* Calls whose first argument is an address the call maps, unmaps or
 * changes; (and mremap's fifth). */
static int is_mm(long nr)
{
    switch (nr) {
    case SYS_mmap: case SYS_mprotect: case SYS_munmap: case SYS_mremap: case SYS_msync:
    case SYS_madvise: case SYS_mlock: case SYS_munlock: case SYS_remap_file_pages:
    case 237 /* mbind */: case 325 /* mlock2 */: case 329 /* pkey_mprotect */:
    case 30 /* shmat */: case 67 /* shmdt */: case 450: case 440:
        return 1;
    }
    return 0;
}

/* Calls whose pid arguments may reach another process. */
static int signals_or_changes_pid(long nr)
{
    switch (nr) {
    case SYS_kill: case SYS_tkill: case SYS_tgkill: case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo: case SYS_ptrace: case SYS_setpgid: case SYS_prlimit64:
    case SYS_process_vm_readv: case SYS_process_vm_writev: case SYS_setpriority:
    case SYS_sched_setaffinity: case SYS_sched_setparam: case SYS_sched_setscheduler:
    case 314 /* sched_setattr */: case SYS_migrate_pages: case SYS_move_pages: case SYS_kcmp:
    case 434 /* pidfd_open */: case 440 /* process_madvise */: case 448 /* process_mrelease */:
        return 1;
    }
    return 0;
}

static int is_fd_maker(long nr)
{
    switch (nr) {
    case SYS_open: case SYS_openat: case SYS_creat: case SYS_socket: case SYS_accept:
    case SYS_accept4: case SYS_dup: case SYS_dup2: case SYS_dup3: case SYS_epoll_create:
    case SYS_epoll_create1: case SYS_eventfd: case SYS_eventfd2: case SYS_timerfd_create:
    case SYS_signalfd: case SYS_signalfd4: case SYS_memfd_create: case SYS_fcntl:
    case SYS_inotify_init: case SYS_inotify_init1: case 437:
        return 1;
    }
    return 0;
}

#endif
