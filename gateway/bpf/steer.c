// SPDX-License-Identifier: GPL-2.0
// egressgw's steering program: hand the dataplane only what it translates, the node the rest.
// The node keeps its own OVS, pods and Service ingress beside the gateway, so:
//   - Geneve (UDP 6081) to the node IP whose inner frame is egress traffic: inner IPv4 from a
//     served pod (`served_pods`) to a destination outside the cluster's own networks
//     (`cluster_nets`)                                                 -> the AF_XDP socket
//     Geneve with the forwarding VNI and no options whose inner IPv4 goes to an egress IP
//     here: a reply another gateway of the set forwarded              -> the AF_XDP socket
//     Every other Geneve frame (east-west, unmapped pods, OVN's BFD between chassis, option
//     layouts this program cannot read, non-IPv4 inside)               -> XDP_PASS (node's OVS)
//   - to an egress IP (`egress_ips`): the Service's own ports (`service_ports`) and non-first
//     fragments (no ports to read)                                    -> XDP_PASS (the node)
//     anything else                                                    -> the AF_XDP socket:
//     a possible reply (TCP/UDP to the SNAT range, ICMP echo reply or error) is translated,
//     the rest is dropped there and counted as no_session
//   - everything else (ARP, BGP, BFD, SSH, kubelet, ...)               -> XDP_PASS
// If no socket is bound to the queue, bpf_redirect_map falls back to XDP_PASS. Each verdict
// bumps one per-CPU counter (`verdicts`), which `egressctl stats` shows.
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
#define ETH_P_TEB_BE __builtin_bswap16(0x6558)
#define IP_OFFSET_MASK_BE __builtin_bswap16(0x1fff)
// OVN's Geneve option header: class 0x0102, type 0x80 (critical), length 1 word.
#define OVN_OPTION_BE __builtin_bswap32(0x01028001)
#define ICMP_ECHOREPLY 0
// Bytes 4-7 of the Geneve header of a reply forwarded between gateways (pipeline/forward.rs):
// VNI 0xee6701, reserved 0.
#define FORWARD_VNI_WORD_BE __builtin_bswap32(0xee670100)

// Indexes into `verdicts`; the daemon names them in the same order (xdp/steer.rs).
enum verdict {
    GENEVE_REDIRECTED,
    GENEVE_PASSED,
    SERVICE_PORT_PASSED,
    REPLY_REDIRECTED,
    EGRESS_IP_OTHER_REDIRECTED,
    FRAGMENT_PASSED,
    OTHER_PASSED,
    FORWARDED_REDIRECTED,
    VERDICTS,
};

// queue index -> AF_XDP socket
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// The ports replies to our SNAT come back to, host byte order, inclusive.
struct port_range {
    __u16 first;
    __u16 last;
};

// egress IPs served here (network byte order) -> their SNAT port range
// (Every map size here is mirrored by a MAX_ constant in xdp/steer.rs.)
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct port_range);
} egress_ips SEC(".maps");

struct service_port {
    __u32 ip;    // egress IP, network byte order
    __u16 port;  // network byte order
    __u8 proto;  // IPPROTO_TCP or IPPROTO_UDP
    __u8 pad;
};

// the Service's own ports on its LoadBalancer IP: they belong to the node's load balancer
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct service_port);
    __type(value, __u8);
} service_ports SEC(".maps");

// pod IPs with an egress mapping here (network byte order) -> unused
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} served_pods SEC(".maps");

struct lpm_v4 {
    __u32 prefixlen;
    __u32 addr;  // network byte order
};

// the cluster's own networks (pod, service, join, transit, masquerade, node subnets)
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __type(key, struct lpm_v4);
    __type(value, __u8);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} cluster_nets SEC(".maps");

// [0] = this node's underlay IP (network byte order)
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} node_ip SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, VERDICTS);
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int count(enum verdict v, int action)
{
    __u32 key = v;
    __u64 *n = bpf_map_lookup_elem(&verdicts, &key);
    if (n)
        *n += 1;
    return action;
}

static __always_inline int to_dataplane(struct xdp_md *ctx, enum verdict v)
{
    return count(v, bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS));
}

// Geneve to the node IP: is the inner frame egress traffic of a served pod?
static __always_inline int steer_geneve(struct xdp_md *ctx, struct udphdr *udp, void *end)
{
    __u8 *g = (void *)(udp + 1);
    if ((void *)(g + 12) > end)
        return count(GENEVE_PASSED, XDP_PASS);
    // A reply forwarded by another gateway of the set: no options, the forwarding VNI, an
    // egress IP inside.
    if (g[0] == 0 && !(g[1] & 0x80) && *(__u16 *)(g + 2) == ETH_P_TEB_BE &&
        *(__u32 *)(g + 4) == FORWARD_VNI_WORD_BE) {
        struct ethhdr *fwd_eth = (void *)(g + 8);
        if ((void *)(fwd_eth + 1) > end || fwd_eth->h_proto != ETH_P_IP_BE)
            return count(GENEVE_PASSED, XDP_PASS);
        struct iphdr *fwd = (void *)(fwd_eth + 1);
        if ((void *)(fwd + 1) > end)
            return count(GENEVE_PASSED, XDP_PASS);
        __u32 fwd_dst = fwd->daddr;
        if (!bpf_map_lookup_elem(&egress_ips, &fwd_dst))
            return count(GENEVE_PASSED, XDP_PASS);
        return to_dataplane(ctx, FORWARDED_REDIRECTED);
    }
    // Version 0, not OAM, Ethernet inside, and OVN's option first.
    __u8 opt_words = g[0] & 0x3f;
    if ((g[0] >> 6) != 0 || (g[1] & 0x80) || *(__u16 *)(g + 2) != ETH_P_TEB_BE || opt_words < 2 ||
        *(__u32 *)(g + 8) != OVN_OPTION_BE)
        return count(GENEVE_PASSED, XDP_PASS);
    struct ethhdr *inner_eth = (void *)(g + 8 + opt_words * 4);
    if ((void *)(inner_eth + 1) > end || inner_eth->h_proto != ETH_P_IP_BE)
        return count(GENEVE_PASSED, XDP_PASS);
    struct iphdr *inner = (void *)(inner_eth + 1);
    if ((void *)(inner + 1) > end || inner->version != 4)
        return count(GENEVE_PASSED, XDP_PASS);
    __u32 src = inner->saddr;
    if (!bpf_map_lookup_elem(&served_pods, &src))
        return count(GENEVE_PASSED, XDP_PASS);
    struct lpm_v4 dst = {.prefixlen = 32, .addr = inner->daddr};
    if (bpf_map_lookup_elem(&cluster_nets, &dst))
        return count(GENEVE_PASSED, XDP_PASS);
    // Fragments included: the dataplane drops them, counted, rather than let a pod's packet
    // out some other way.
    return to_dataplane(ctx, GENEVE_REDIRECTED);
}

// To an egress IP: the Service's ports are the node's; everything else is the dataplane's.
static __always_inline int steer_egress_ip(struct xdp_md *ctx, struct iphdr *ip, void *end,
                                           struct port_range *range)
{
    if (ip->frag_off & IP_OFFSET_MASK_BE)
        return count(FRAGMENT_PASSED, XDP_PASS);
    void *l4 = (void *)ip + ip->ihl * 4;
    if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
        // TCP and UDP both start with the two ports.
        __u16 *ports = l4;
        if ((void *)(ports + 2) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        struct service_port key = {.ip = ip->daddr, .port = ports[1], .proto = ip->protocol};
        if (bpf_map_lookup_elem(&service_ports, &key))
            return count(SERVICE_PORT_PASSED, XDP_PASS);
        __u16 port = __builtin_bswap16(ports[1]);
        if (port >= range->first && port <= range->last)
            return to_dataplane(ctx, REPLY_REDIRECTED);
        return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
    }
    if (ip->protocol == IPPROTO_ICMP) {
        __u8 *icmp = l4;
        if ((void *)(icmp + 1) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        // Echo reply; destination unreachable, time exceeded, parameter problem.
        if (icmp[0] == ICMP_ECHOREPLY || icmp[0] == 3 || icmp[0] == 11 || icmp[0] == 12)
            return to_dataplane(ctx, REPLY_REDIRECTED);
    }
    return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != ETH_P_IP_BE)
        return count(OTHER_PASSED, XDP_PASS);
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->ihl < 5)
        return count(OTHER_PASSED, XDP_PASS);
    __u32 dst = ip->daddr;
    __u32 zero = 0;
    __u32 *node = bpf_map_lookup_elem(&node_ip, &zero);
    if (node && dst == *node) {
        struct udphdr *udp = (void *)ip + ip->ihl * 4;
        // A non-first fragment has no UDP header; the node reassembles what it gets.
        if (ip->protocol != IPPROTO_UDP || (ip->frag_off & IP_OFFSET_MASK_BE) ||
            (void *)(udp + 1) > end || udp->dest != GENEVE_PORT_BE)
            return count(OTHER_PASSED, XDP_PASS);
        return steer_geneve(ctx, udp, end);
    }
    struct port_range *range = bpf_map_lookup_elem(&egress_ips, &dst);
    if (range)
        return steer_egress_ip(ctx, ip, end, range);
    return count(OTHER_PASSED, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
