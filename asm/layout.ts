/**
 * @module The fixed memory layout, verdict codes and counter indices of the weft core: the one
 * contract between the Wasm core (`asm/`), its host and the TypeScript reference
 * (`src/core/reference.ts`). Plain untyped constants so that both AssemblyScript and TypeScript
 * compile this same file; `src/core/layout.ts` re-exports it for the host side.
 *
 * All offsets are byte addresses in the core's linear memory. Memory is fixed at
 * `MEMORY_PAGES` (initial = maximum, never grown), so views of it never detach.
 * Scalars inside descriptors are little-endian (the Wasm byte order, and that of every host a
 * `Uint32Array` runs on) unless marked "network order".
 */

/** Bumped whenever anything below changes; the loader checks it against the .wasm file. */
export const LAYOUT_VERSION = 3;
export const MEMORY_PAGES = 976;
export const MEMORY_BYTES = 976 * 65536; // 61 MiB: 56 for the udp path, then the WG_* regions

/** Size of `struct virtio_net_hdr` before each packet on an `IFF_VNET_HDR` TUN. */
export const VNET_HDR_LEN = 10;

// ------------------------------------------------------------------ control and small regions
/** 64 bytes of call arguments that do not fit a scalar (IPv6 addresses, network order). */
export const ARG = 0x10000;
/** u32 counters, wrapping; egress at COUNTERS + 4*(C_EG + i), ingress at 4*(C_IN + i). */
export const COUNTERS = 0x10100;
export const COUNTER_COUNT = 64;
/**
 * IPv6 senders of ingress datagrams: 16 bytes (network order) per IN_IN_DESC index, read when
 * that descriptor's IPv4 source is 0.0.0.0 (the datagram came over the IPv6 underlay).
 */
export const IN_SRC6 = 0x14000;
/** Batch lookup input: u32 IPv4 addresses (4 bytes each) or IPv6 addresses (16 bytes each). */
export const LOOKUP_IN = 0x20000;
export const LOOKUP_CAP = 4096;
/** Batch lookup output: i32 per address, the route value or NO_ROUTE. */
export const LOOKUP_OUT = 0x30000;

/** Input descriptors, 16 bytes: off u32, len u32, addr[4] (network order), seg u16, verdict u16. */
export const IN_DESC_SIZE = 16;
/** Egress (TUN -> UDP) input: one descriptor per TUN read. */
export const EG_IN_DESC = 0x34000;
export const EG_IN_CAP = 1024;
/**
 * Egress UDP output, 16 bytes: off u32, len u32, ip[4] + port[2] (network order), peer u16.
 * ip 0.0.0.0: send over the IPv6 underlay to PUBLIC6[peer].
 */
export const UDP_DESC_SIZE = 16;
export const EG_UDP_DESC = 0x38000;
export const EG_UDP_CAP = 4096;
/** TUN write descriptors, 8 bytes: off u32, len u32 (the virtio_net_hdr included when on). */
export const TUN_DESC_SIZE = 8;
export const EG_TUN_DESC = 0x48000;
export const EG_TUN_CAP = 1024;
/** Ingress (UDP -> TUN) input: one descriptor per received datagram (or UDP GRO buffer). */
export const IN_IN_DESC = 0x4a000;
export const IN_IN_CAP = 1024;
export const IN_TUN_DESC = 0x4e000;
export const IN_TUN_CAP = 16384;

// ------------------------------------------------------------------ route and peer tables
/** Direct-index table of the cluster network: i32 route value per subnet index. */
export const DIRECT = 0x70000;
export const DIRECT_CAP = 65536;
/** First trie level (16 bits) of IPv4 and of IPv6: u32 entries [code:8][value or chunk:24]. */
export const ROOT4 = 0xb0000;
export const ROOT6 = 0xf0000;
/**
 * Peers, 48 bytes: flags u32 (PEER_* below), ip u32, port u32, subnet4 u32, len4 u32, len6 u32,
 * pad, subnet6[16]. Their public IPv6 addresses are apart, in PUBLIC6.
 */
export const PEERS = 0x130000;
export const PEER_CAP = 65536;
export const PEER_SIZE = 48;
/** Open-addressing hash of the exact routes and of peer public IPs (24-byte entries). */
export const RULES = 0x430000;
export const RULE_SLOTS = 131072;
export const RULE_SIZE = 24;
export const RULE_MAX = 98304;
/** Ingress scratch: one 32-byte record per accepted packet of a call, and the flow table. */
export const GRO_PKTS = 0x730000;
export const GRO_PKT_CAP = 16384;
export const GRO_FLOWS = 0x7b0000;
export const GRO_FLOW_SLOTS = 1024;
export const GRO_FLOW_MAX = 512;
/** Trie chunks: 256 u32 entries (8 address bits) each. */
export const CHUNKS = 0x800000;
export const CHUNK_CAP = 8192;

// ------------------------------------------------------------------ packet arenas
/** Egress input: the host reads TUN packets here (anywhere, per descriptor). */
export const EG_IN = 0x1000000;
export const EG_IN_SIZE = 0x800000;
/** Egress output: segments of split super-packets (forwarded non-GSO packets stay in place). */
export const EG_OUT = 0x1800000;
export const EG_OUT_SIZE = 0x800000;
/** Egress TUN output: ICMP unreachable replies. */
export const EG_TUN = 0x2000000;
export const EG_TUN_SIZE = 0x200000;
/** Ingress input: the host receives datagrams here, VNET_HDR_LEN bytes of headroom before each. */
export const IN_IN = 0x2200000;
export const IN_IN_SIZE = 0x800000;
/** Ingress output: coalesced super-packets and copies that had no headroom (1.5 x IN_IN). */
export const IN_OUT = 0x2a00000;
export const IN_OUT_SIZE = 0xc00000;
/** Public IPv6 address of each peer (16 bytes, network order, by peer id), valid with PEER_PUB6. */
export const PUBLIC6 = 0x3600000;

/** Peer flags: valid; has an IPv6 subnet; has a public IPv6; datagrams to it go over IPv6. */
export const PEER_VALID = 1;
export const PEER_V6 = 2;
export const PEER_PUB6 = 4;
export const PEER_VIA6 = 8;

// ------------------------------------------------------------------ results
/** Route lookup result when nothing matches; route values are 0..ROUTE_VALUE_MAX. */
export const NO_ROUTE = -1;
export const ROUTE_VALUE_MAX = 0xffffff;
export const ERR_INVALID = -2;
export const ERR_NOT_FOUND = -3;
export const ERR_FULL = -4;
export const ERR_EXISTS = -5;

/** setOptions() flags. */
export const OPT_VNET_HDR = 1;
/**
 * Ingress descriptors name their peer (word 2 = peer id) instead of the sender's address: the
 * wireguard backend knows the peer from the session that opened the message (cryptokey routing),
 * wherever the datagram came from (a roaming peer).
 */
export const OPT_PEER_ID_IN = 2;

/** Per-packet verdicts (the u16 written back into each input descriptor; counter indices). */
export const V_OK = 0;
export const V_NO_ROUTE = 1;
export const V_TTL_EXPIRED = 2;
export const V_TOO_SHORT = 3;
export const V_BAD_VERSION = 4;
export const V_BAD_HEADER_LENGTH = 5;
export const V_BAD_TOTAL_LENGTH = 6;
export const V_BAD_CHECKSUM = 7;
export const V_BAD_VNET_HDR = 8;
export const V_NO_PEER = 9;
export const V_NO_SPACE = 10;
export const V_UNKNOWN_SOURCE = 11;
export const V_SPOOFED = 12;
export const V_BAD_DESCRIPTOR = 13;
export const VERDICT_COUNT = 14;

/** Counter bases: counter C_EG + v / C_IN + v counts verdict v; the rest are below. */
export const C_EG = 0;
export const C_IN = 32;
/** UDP datagrams produced by egress. */
export const C_EG_DATAGRAMS = 16;
/** Super-packets split by egress. */
export const C_EG_SPLIT = 17;
/** Partial checksums (NEEDS_CSUM) completed by egress. */
export const C_EG_CSUM = 18;
/** ICMP unreachable replies written to the TUN. */
export const C_EG_ICMP = 19;
/** TUN writes produced by ingress. */
export const C_IN_WRITES = 32 + 16;
/** Segments merged into a preceding segment of their flow by ingress. */
export const C_IN_MERGED = 32 + 17;

// ------------------------------------------------------------------ WireGuard transport (asm/wg_transport.ts)
/**
 * Sessions (WireGuard keypairs), WG_SESSION_SIZE bytes each, by slot: sendKey[32], recvKey[32],
 * localIndex u32, remoteIndex u32, flags u32 (WG_SESSION_VALID), pad u32, sendCounter u64,
 * recvLast u64, pad to 128, then the replay ring: WG_REPLAY_BLOCKS u64 bit blocks. The receiver
 * index of slot s is chosen by the host with `index & (WG_SESSION_CAP - 1) == s`.
 */
export const WG_SESSIONS = 0x3800000;
export const WG_SESSION_CAP = 4096;
export const WG_SESSION_SIZE = 1152;
export const WG_SESSION_VALID = 1;
/** Offsets inside a session record. */
export const WG_S_SEND_KEY = 0;
export const WG_S_RECV_KEY = 32;
export const WG_S_LOCAL_INDEX = 64;
export const WG_S_REMOTE_INDEX = 68;
export const WG_S_FLAGS = 72;
export const WG_S_SEND_COUNTER = 80;
export const WG_S_RECV_LAST = 88;
export const WG_S_REPLAY = 128;
/** Replay window as wireguard-go's replay.Filter (RFC 6479): 128 blocks of 64 bits, 8128 back. */
export const WG_REPLAY_BLOCKS = 128;
export const WG_REPLAY_WINDOW = 127 * 64;
/**
 * Seal descriptors, 16 bytes: src u32 (plaintext), dst u32 (the datagram is written there:
 * header, ciphertext, tag; dst = src - 16 seals in place), len u16 (plaintext), session u16,
 * out u16 (sealed length, written by the core), verdict u16.
 */
export const WG_SEAL_DESC = 0x3c80000;
export const WG_SEAL_CAP = 1024;
/**
 * Open descriptors, 16 bytes: off u32 (datagram), len u32 (datagram length), plain u32 (written:
 * the plaintext's length without padding; it starts at off + 16, decrypted in place), session
 * u16 (written: the slot that authenticated it), verdict u16.
 */
export const WG_OPEN_DESC = 0x3c84000;
export const WG_OPEN_CAP = 1024;
export const WG_DESC_SIZE = 16;
/** u32 counters, wrapping: seal verdict v at WG_COUNTERS + 4*(WG_C_SEAL + v), open at WG_C_OPEN + v. */
export const WG_COUNTERS = 0x3c88000;
export const WG_COUNTER_COUNT = 32;
export const WG_C_SEAL = 0;
export const WG_C_OPEN = 16;
/** Core scratch, 320 bytes (nonce, Poly1305 key, partial blocks); the host never needs it. */
export const WG_SCRATCH = 0x3c88100;
/**
 * Descriptors may point only into the packet arenas [WG_ARENA_START, WG_ARENA_END), never into
 * tables or sessions (raw AEAD exports: their key and nonce at ARG[0..32], ARG[32..44]).
 */
export const WG_ARENA_START = 0x1000000;
export const WG_ARENA_END = 0x3600000;
/** Header of a transport data message: type u32 = 4, receiver u32, counter u64 (all LE). */
export const WG_HEADER_LEN = 16;
export const WG_TAG_LEN = 16;
export const WG_MESSAGE_TRANSPORT = 4;
/** Largest sealed message (header, padded ciphertext, tag): one UDP datagram. */
export const WG_MAX_MESSAGE = 65535;

/** WireGuard verdicts (the u16 in each seal/open descriptor, and counter indices). */
export const WV_OK = 0;
/** open: shorter than 32 bytes; seal: the sealed message would exceed WG_MAX_MESSAGE. */
export const WV_BAD_LENGTH = 1;
/** open: not a transport data message (type field != 4): handshake messages land here. */
export const WV_BAD_TYPE = 2;
/** open: no valid session has this receiver index. */
export const WV_UNKNOWN_RECEIVER = 3;
/** open: counter seen before, older than the window, or at/over the limit. */
export const WV_REPLAYED = 4;
/** open: the tag does not authenticate (wrong key, tampered header counter, ciphertext or tag). */
export const WV_AUTH_FAILED = 5;
/** seal: the session slot is out of range or empty. */
export const WV_NO_SESSION = 6;
/** seal: the session's send counter reached WireGuard's RejectAfterMessages. */
export const WV_EXHAUSTED = 7;
/** seal/open: the descriptor points outside the packet arenas. */
export const WV_BAD_DESCRIPTOR = 8;
export const WV_COUNT = 9;
