/**
 * IPv4 addresses and CIDRs as numbers: pod CIDR blocks for nodes, service
 * addresses, routes. Dotted quads only (Baton is IPv4 for now).
 */

/** "10.244.0.0" → 32-bit number; throws on anything that is not dotted IPv4. */
export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255))
    throw new Error(`"${ip}" is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** A CIDR split into equal blocks of `/blockBits`. */
export class CidrBlocks {
  readonly base: number;
  readonly bits: number;
  readonly count: number;

  constructor(
    readonly cidr: string,
    readonly blockBits: number,
  ) {
    const c = parseCidr(cidr);
    this.base = c.base;
    this.bits = c.bits;
    if (blockBits < this.bits || blockBits > 30)
      throw new Error(
        `node CIDR mask size ${blockBits} must be between the cluster prefix (${this.bits}) and 30`,
      );
    this.count = 2 ** (blockBits - this.bits);
  }

  block(i: number): string {
    return `${intToIpv4(this.base + i * 2 ** (32 - this.blockBits))}/${this.blockBits}`;
  }

  /** The block index of `cidr`, or undefined when it is not one of ours. */
  indexOf(cidr: string): number | undefined {
    const m = /^([\d.]+)\/(\d+)$/.exec(cidr);
    if (!m || Number(m[2]) !== this.blockBits) return undefined;
    const off = ipv4ToInt(m[1]) - this.base;
    const size = 2 ** (32 - this.blockBits);
    return off >= 0 && off % size === 0 && off / size < this.count ? off / size : undefined;
  }
}

/** A parsed IPv4 CIDR: its first address, prefix length and size. */
export interface Cidr {
  cidr: string;
  base: number;
  bits: number;
  size: number;
}

/** Parses "a.b.c.d/n"; throws saying what is wrong (host bits set, bad prefix). */
export function parseCidr(cidr: string): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`"${cidr}" is not an IPv4 CIDR (a.b.c.d/n)`);
  const bits = Number(m[2]);
  if (bits > 32) throw new Error(`"${cidr}": the prefix length must be at most 32`);
  const ip = ipv4ToInt(m[1]);
  const base = ip - (ip % 2 ** (32 - bits));
  if (base !== ip)
    throw new Error(`"${cidr}" has host bits set (the network is ${intToIpv4(base)}/${bits})`);
  return { cidr, base, bits, size: 2 ** (32 - bits) };
}

/** Whether `ip` (dotted IPv4) lies in `c`. */
export function cidrContains(c: Cidr, ip: string): boolean {
  let n: number;
  try {
    n = ipv4ToInt(ip);
  } catch {
    return false;
  }
  return n >= c.base && n < c.base + c.size;
}
