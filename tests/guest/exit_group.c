/* Raw exit_group with a status above 255: only the low byte survives. */
#include "common.h"

int main(void)
{
    guest_init();
    printf("before\n");
    syscall(SYS_exit_group, 0x1234);
    printf("not_reached\n");
    return 1;
}
