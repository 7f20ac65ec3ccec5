/* flashsale/pause: a pod sandbox's first process, like Kubernetes' build/pause/linux/pause.c.
 * It holds the pod's namespaces: sleeps until SIGINT or SIGTERM, then exits 0, and reaps any child
 * that is re-parented to it (it is PID 1 of the pod when the PID namespace is shared). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int signo) {
  (void)signo;
  _exit(0);
}

static void on_child(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("flashsale/pause\n");
    return 0;
  }
  if (getpid() != 1) {
    fprintf(stderr, "pause: not PID 1: orphans will not be reaped here\n");
  }
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
  return 42; /* not reached */
}
