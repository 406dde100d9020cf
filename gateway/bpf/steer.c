// SPDX-License-Identifier: GPL-2.0
// egressgw's steering program: hand the dataplane only what it translates, the kernel the rest.
//   - UDP to port 6081 (Geneve) addressed to this node's IP  -> the AF_XDP socket of this queue
//   - anything addressed to an egress IP this node serves     -> the AF_XDP socket of this queue
//   - everything else (ARP, BGP, BFD, SSH, kubelet, ...)      -> XDP_PASS, the kernel as usual
// If no socket is bound to the queue, bpf_redirect_map falls back to XDP_PASS.
// Built with `clang -O2 -g -target bpf`; no libbpf headers needed.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)BPF_FUNC_redirect_map;

#define GENEVE_PORT_BE __builtin_bswap16(6081)
#define ETH_P_IP_BE __builtin_bswap16(ETH_P_IP)

// queue index -> AF_XDP socket
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// egress IPs served here (network byte order) -> unused
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u8);
} egress_ips SEC(".maps");

// [0] = this node's underlay IP (network byte order)
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} node_ip SEC(".maps");

SEC("xdp")
int steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != ETH_P_IP_BE)
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end)
        return XDP_PASS;
    __u32 dst = ip->daddr;
    __u32 zero = 0;
    __u32 *node = bpf_map_lookup_elem(&node_ip, &zero);
    if (node && dst == *node) {
        struct udphdr *udp = (void *)ip + ip->ihl * 4;
        if (ip->protocol != IPPROTO_UDP || (void *)(udp + 1) > end || udp->dest != GENEVE_PORT_BE)
            return XDP_PASS;
        return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
    }
    if (bpf_map_lookup_elem(&egress_ips, &dst))
        return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
