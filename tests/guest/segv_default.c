/* A null pointer write with SIGSEGV at its default action kills the
 * process: status 128+11 = 139. */
#include "common.h"

int main(void)
{
    guest_init();
    printf("before_fault\n");
    *(volatile int *)0 = 1;
    printf("not_reached\n");
    return 0;
}
