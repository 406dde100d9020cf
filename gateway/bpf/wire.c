// The line-rate bench's wire: every frame goes straight back out of the interface it came in
// on, unchanged. A trial through it costs the tester's own work and the veth hops.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

SEC("xdp")
int wire(struct xdp_md *ctx)
{
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
