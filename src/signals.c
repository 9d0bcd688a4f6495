/* signals.c: SIGTERM and SIGINT become a flag that the next collective flush or
 * commit turns into STRATA_ERR_INTERRUPTED on every rank (docs/architecture.md, Signals). */
#include <signal.h>
#include <string.h>

#include "error.h"

volatile sig_atomic_t strata_signal_pending;

static void on_signal(int sig)
{
    strata_signal_pending = sig;
}

strata_status strata_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return error_set(NULL, STRATA_ERR_IO, "cannot install signal handlers");
    return STRATA_OK;
}
