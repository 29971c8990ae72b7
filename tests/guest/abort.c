/* abort(): SIGABRT with the default action; status 128+6 = 134. */
#include "common.h"

int main(void)
{
    guest_init();
    printf("before_abort\n");
    abort();
}
