/* exit(3): atexit handlers and stdio flushing run, status 3. */
#include "common.h"

static void bye(void)
{
    printf("atexit_ran\n");
}

int main(void)
{
    atexit(bye);
    printf("before_exit\n"); /* fully buffered on a pipe: flushed by exit */
    exit(3);
}
