// Minimal TUN<->UDP proxy with flanneld's udp backend design: one thread, poll() on both fds,
// one packet per read/sendto and recvfrom/write. Usage: tun_proxy DEV LOCAL_IP PORT PEER_IP [SPIN_US]
// SPIN_US > 0: weft's busy-poll (WEFT_UDP_SPIN_US, src/backend/udp/packet_loop.ts): after a packet,
// poll without sleeping for up to that many µs as SCHED_IDLE, yielding after each empty poll;
// SCHED_OTHER again when the window closes or under load (two busy turns in a row).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static long long now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000LL + t.tv_nsec / 1000; }
int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) { fprintf(stderr, "usage: %s DEV LOCAL_IP PORT PEER_IP [SPIN_US]\n", argv[0]); return 2; }
  int tun = open("/dev/net/tun", O_RDWR);
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) { perror("tun"); return 1; }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  if (bind(s, (void *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  struct sockaddr_in peer = a; inet_pton(AF_INET, argv[4], &peer.sin_addr);
  printf("ready\n"); fflush(stdout);
  static char buf[65536];
  struct pollfd p[2] = { { tun, POLLIN, 0 }, { s, POLLIN, 0 } };
  long long spin = argc == 6 ? atoll(argv[5]) : 0, until = 0;
  int idle = 0, busy = 0;
  struct sched_param prio0 = { 0 };
  for (;;) {
    int spinning = !busy && until > now_us();
    if (!busy && spinning != idle) { sched_setscheduler(0, spinning ? SCHED_IDLE : SCHED_OTHER, &prio0); idle = spinning; }
    int moved = 0;
    if (poll(p, 2, busy || spinning ? 0 : -1) > 0) {
      if (p[0].revents & POLLIN) {
        ssize_t n = read(tun, buf, sizeof buf);
        if (n > 0) moved = sendto(s, buf, n, 0, (void *)&peer, sizeof peer) > 0;
      }
      if (p[1].revents & POLLIN) { ssize_t n = recv(s, buf, sizeof buf, 0); if (n > 0) moved |= write(tun, buf, n) > 0; }
    }
    if (spin > 0 && moved) {
      until = now_us() + spin;
      if (idle && busy) { sched_setscheduler(0, SCHED_OTHER, &prio0); idle = 0; }
    } else if (idle) {
      sched_yield();
    }
    busy = spin > 0 && moved; // without SPIN_US: flanneld's loop, poll() blocks before every packet
  }
}
