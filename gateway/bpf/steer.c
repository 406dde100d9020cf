// SPDX-License-Identifier: GPL-2.0
// egressgw's steering program: hand the dataplane only what it translates, the node the rest.
// The node keeps its own OVS, pods and Service ingress beside the gateway, so:
//   - Geneve (UDP 6081) to the node IP (or, on the IPv6 underlay, to the node's IPv6 address
//     `node_ip6`, UDP right after the IPv6 header) whose inner frame is egress traffic: inner IPv4 or
//     IPv6 from a served pod (`served_pods`, `served_pods6`) to a unicast destination outside
//     the cluster's own networks (`cluster_nets`, `cluster_nets6`)      -> the AF_XDP socket
//     Geneve with the forwarding VNI and no options whose inner IPv4 or IPv6 goes to an
//     egress IP here: a reply another gateway of the set forwarded    -> the AF_XDP socket
//     Every other Geneve frame (east-west, unmapped pods, OVN's BFD between chassis, option
//     layouts this program cannot read, neither IP inside)             -> XDP_PASS (node's OVS)
//   - to an egress IP of either family (`egress_ips`, `egress_ips6`): the Service's own ports
//     (`service_ports`, `service_ports6`), non-first fragments (no ports to read) but those
//     of an IPv4 reply whose first fragment went to the socket (`reply_fragments`), and IPv6
//     neighbour discovery (the node answers for its addresses)        -> XDP_PASS (the node)
//     anything else                                                    -> the AF_XDP socket:
//     a possible reply (TCP/UDP to the SNAT range, ICMP or ICMPv6 echo reply or error) is
//     translated, the rest is dropped there and counted as no_session
//   - everything else (ARP, BGP, BFD, SSH, kubelet, ...)               -> XDP_PASS
// If no socket is bound to the queue, bpf_redirect_map falls back to XDP_PASS. Each verdict
// bumps one per-CPU counter (`verdicts`), which `egressctl stats` shows.
// Built with `clang -O2 -g -target bpf`; no libbpf headers needed.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)BPF_FUNC_redirect_map;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)BPF_FUNC_map_update_elem;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_delete_elem;

#define GENEVE_PORT_BE __builtin_bswap16(6081)
#define ETH_P_IP_BE __builtin_bswap16(ETH_P_IP)
#define ETH_P_IPV6_BE __builtin_bswap16(ETH_P_IPV6)
#define ETH_P_TEB_BE __builtin_bswap16(0x6558)
#define IP_OFFSET_MASK_BE __builtin_bswap16(0x1fff)
#define IP_MF_BE __builtin_bswap16(0x2000)
// OVN's Geneve option header: class 0x0102, type 0x80 (critical), length 1 word.
#define OVN_OPTION_BE __builtin_bswap32(0x01028001)
#define ICMP_ECHOREPLY 0
#define ICMPV6_ECHO_REPLY 129
// IPv6 extension headers the walk steps over (RFC 8200 4.1), and the fragment header.
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define IPV6_EXT_HEADERS 4
#define IPV6_FRAG_OFFSET_MASK_BE __builtin_bswap16(0xfff8)
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
    NDP_PASSED,
    FRAGMENT_REDIRECTED,
    VERDICTS,
};

// queue index -> AF_XDP socket
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// One IPv4 datagram, as every one of its fragments names it (RFC 791).
struct fragment_id {
    __u32 src;
    __u32 dst;
    __u16 id;    // network byte order
    __u8 proto;
    __u8 pad;
};

// Replies whose first fragment went to the dataplane: their later fragments, which have no
// ports to steer by, follow it. Least recently used entries make room; a Service port's first
// fragment removes its datagram's entry, so that a reused identification is not misled.
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct fragment_id);
    __type(value, __u8);
} reply_fragments SEC(".maps");

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

// An IPv6 address as the packet holds it.
struct addr6 {
    __u32 w[4];
};

// IPv6 egress IPs served here -> their SNAT port range
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct addr6);
    __type(value, struct port_range);
} egress_ips6 SEC(".maps");

struct service_port6 {
    struct addr6 ip;  // egress IP
    __u16 port;       // network byte order
    __u8 proto;       // IPPROTO_TCP or IPPROTO_UDP
    __u8 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct service_port6);
    __type(value, __u8);
} service_ports6 SEC(".maps");

// IPv6 pods with an egress mapping here
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct addr6);
    __type(value, __u8);
} served_pods6 SEC(".maps");

struct lpm_v6 {
    __u32 prefixlen;
    struct addr6 addr;
};

// the cluster's own IPv6 networks
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __type(key, struct lpm_v6);
    __type(value, __u8);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} cluster_nets6 SEC(".maps");

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

// [0] = this node's IPv6 underlay address; all zero where the underlay is IPv4 alone
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct addr6);
} node_ip6 SEC(".maps");

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

// An IPv6 packet inside Geneve: a served pod's, to a unicast address outside the cluster?
// Link-local and multicast destinations (neighbour discovery, MLD) never leave the overlay.
static __always_inline int steer_geneve6(struct xdp_md *ctx, struct ipv6hdr *inner, void *end)
{
    if ((void *)(inner + 1) > end || inner->version != 6)
        return count(GENEVE_PASSED, XDP_PASS);
    struct addr6 src;
    __builtin_memcpy(&src, &inner->saddr, sizeof(src));
    if (!bpf_map_lookup_elem(&served_pods6, &src))
        return count(GENEVE_PASSED, XDP_PASS);
    __u8 *d = inner->daddr.in6_u.u6_addr8;
    if (d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80))
        return count(GENEVE_PASSED, XDP_PASS);
    struct lpm_v6 dst = {.prefixlen = 128};
    __builtin_memcpy(&dst.addr, &inner->daddr, sizeof(dst.addr));
    if (bpf_map_lookup_elem(&cluster_nets6, &dst))
        return count(GENEVE_PASSED, XDP_PASS);
    return to_dataplane(ctx, GENEVE_REDIRECTED);
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
        if ((void *)(fwd_eth + 1) > end)
            return count(GENEVE_PASSED, XDP_PASS);
        if (fwd_eth->h_proto == ETH_P_IPV6_BE) {
            struct ipv6hdr *fwd6 = (void *)(fwd_eth + 1);
            if ((void *)(fwd6 + 1) > end)
                return count(GENEVE_PASSED, XDP_PASS);
            struct addr6 fwd6_dst;
            __builtin_memcpy(&fwd6_dst, &fwd6->daddr, sizeof(fwd6_dst));
            if (!bpf_map_lookup_elem(&egress_ips6, &fwd6_dst))
                return count(GENEVE_PASSED, XDP_PASS);
            return to_dataplane(ctx, FORWARDED_REDIRECTED);
        }
        if (fwd_eth->h_proto != ETH_P_IP_BE)
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
    if ((void *)(inner_eth + 1) > end)
        return count(GENEVE_PASSED, XDP_PASS);
    if (inner_eth->h_proto == ETH_P_IPV6_BE)
        return steer_geneve6(ctx, (void *)(inner_eth + 1), end);
    if (inner_eth->h_proto != ETH_P_IP_BE)
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

// A reply, to the dataplane; a first fragment's datagram is remembered for its later ones.
static __always_inline int reply_to_dataplane(struct xdp_md *ctx, struct iphdr *ip)
{
    if (ip->frag_off & IP_MF_BE) {
        struct fragment_id f = {.src = ip->saddr, .dst = ip->daddr, .id = ip->id,
                                .proto = ip->protocol};
        __u8 one = 1;
        bpf_map_update_elem(&reply_fragments, &f, &one, BPF_ANY);
    }
    return to_dataplane(ctx, REPLY_REDIRECTED);
}

// To an egress IP: the Service's ports are the node's; everything else is the dataplane's.
static __always_inline int steer_egress_ip(struct xdp_md *ctx, struct iphdr *ip, void *end,
                                           struct port_range *range)
{
    if (ip->frag_off & IP_OFFSET_MASK_BE) {
        struct fragment_id f = {.src = ip->saddr, .dst = ip->daddr, .id = ip->id,
                                .proto = ip->protocol};
        if (bpf_map_lookup_elem(&reply_fragments, &f))
            return to_dataplane(ctx, FRAGMENT_REDIRECTED);
        return count(FRAGMENT_PASSED, XDP_PASS);
    }
    void *l4 = (void *)ip + ip->ihl * 4;
    if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
        // TCP and UDP both start with the two ports.
        __u16 *ports = l4;
        if ((void *)(ports + 2) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        struct service_port key = {.ip = ip->daddr, .port = ports[1], .proto = ip->protocol};
        if (bpf_map_lookup_elem(&service_ports, &key)) {
            if (ip->frag_off & IP_MF_BE) {
                struct fragment_id f = {.src = ip->saddr, .dst = ip->daddr, .id = ip->id,
                                        .proto = ip->protocol};
                bpf_map_delete_elem(&reply_fragments, &f);
            }
            return count(SERVICE_PORT_PASSED, XDP_PASS);
        }
        __u16 port = __builtin_bswap16(ports[1]);
        if (port >= range->first && port <= range->last)
            return reply_to_dataplane(ctx, ip);
        return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
    }
    if (ip->protocol == IPPROTO_ICMP) {
        __u8 *icmp = l4;
        if ((void *)(icmp + 1) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        // Echo reply; destination unreachable, time exceeded, parameter problem.
        if (icmp[0] == ICMP_ECHOREPLY || icmp[0] == 3 || icmp[0] == 11 || icmp[0] == 12)
            return reply_to_dataplane(ctx, ip);
    }
    return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
}

// To an IPv6 egress IP: past the extension headers (a few, bounded), the same rules as IPv4,
// and neighbour discovery is the node's (it answers for the address).
static __always_inline int steer_egress_ip6(struct xdp_md *ctx, struct ipv6hdr *ip, void *end,
                                            struct port_range *range)
{
    __u8 next = ip->nexthdr;
    __u8 *l4 = (void *)(ip + 1);
#pragma unroll
    for (int i = 0; i < IPV6_EXT_HEADERS; i++) {
        if (next == NEXTHDR_FRAGMENT) {
            if ((void *)(l4 + 8) > end)
                return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
            if (*(__u16 *)(l4 + 2) & IPV6_FRAG_OFFSET_MASK_BE)
                return count(FRAGMENT_PASSED, XDP_PASS);
            next = l4[0];
            l4 += 8;
        } else if (next == NEXTHDR_HOP || next == NEXTHDR_ROUTING || next == NEXTHDR_DEST) {
            if ((void *)(l4 + 2) > end)
                return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
            next = l4[0];
            l4 += (l4[1] + 1) * 8;
        }
    }
    if (next == IPPROTO_TCP || next == IPPROTO_UDP) {
        __u16 *ports = (void *)l4;
        if ((void *)(ports + 2) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        struct service_port6 key = {.port = ports[1], .proto = next};
        __builtin_memcpy(&key.ip, &ip->daddr, sizeof(key.ip));
        if (bpf_map_lookup_elem(&service_ports6, &key))
            return count(SERVICE_PORT_PASSED, XDP_PASS);
        __u16 port = __builtin_bswap16(ports[1]);
        if (port >= range->first && port <= range->last)
            return to_dataplane(ctx, REPLY_REDIRECTED);
        return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
    }
    if (next == IPPROTO_ICMPV6) {
        if ((void *)(l4 + 1) > end)
            return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
        // Router and neighbour solicitation and advertisement, redirect (RFC 4861).
        if (l4[0] >= 133 && l4[0] <= 137)
            return count(NDP_PASSED, XDP_PASS);
        // Echo reply; destination unreachable, packet too big, time exceeded, parameter
        // problem.
        if (l4[0] == ICMPV6_ECHO_REPLY || (l4[0] >= 1 && l4[0] <= 4))
            return to_dataplane(ctx, REPLY_REDIRECTED);
    }
    return to_dataplane(ctx, EGRESS_IP_OTHER_REDIRECTED);
}

static __always_inline int steer_ipv6(struct xdp_md *ctx, struct ipv6hdr *ip, void *end)
{
    if ((void *)(ip + 1) > end || ip->version != 6)
        return count(OTHER_PASSED, XDP_PASS);
    struct addr6 dst;
    __builtin_memcpy(&dst, &ip->daddr, sizeof(dst));
    __u32 zero = 0;
    struct addr6 *node = bpf_map_lookup_elem(&node_ip6, &zero);
    if (node && (node->w[0] | node->w[1] | node->w[2] | node->w[3]) && dst.w[0] == node->w[0] &&
        dst.w[1] == node->w[1] && dst.w[2] == node->w[2] && dst.w[3] == node->w[3]) {
        // Geneve over the IPv6 underlay: UDP right after the header (OVS and Linux send no
        // extension headers); anything else to the node's address is the node's.
        struct udphdr *udp = (void *)(ip + 1);
        if (ip->nexthdr != IPPROTO_UDP || (void *)(udp + 1) > end || udp->dest != GENEVE_PORT_BE)
            return count(OTHER_PASSED, XDP_PASS);
        return steer_geneve(ctx, udp, end);
    }
    struct port_range *range = bpf_map_lookup_elem(&egress_ips6, &dst);
    if (range)
        return steer_egress_ip6(ctx, ip, end, range);
    return count(OTHER_PASSED, XDP_PASS);
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return count(OTHER_PASSED, XDP_PASS);
    if (eth->h_proto == ETH_P_IPV6_BE)
        return steer_ipv6(ctx, (void *)(eth + 1), end);
    if (eth->h_proto != ETH_P_IP_BE)
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
