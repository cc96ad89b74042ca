/**
 * NodePorts: a host port can be taken once per node, protocol and IP; a
 * port on 0.0.0.0 (every IP) conflicts with that port on any IP, and the
 * reverse (kube-scheduler's HostPortInfo.CheckConflict).
 */
import type { Pod } from '../../../api/schema';
import { podFacts } from './pod-facts';
import { SKIP, type CycleState, type FilterPlugin, type NodeInfo } from '../types';

export const REASON_PORTS = "node(s) didn't have free ports for the requested pod ports";

const ANY_IP = '0.0.0.0';
const KEY = 'NodePorts';

/** One wanted host port, with the NodeInfo.hostPorts keys it is checked against, made once per cycle. */
interface WantedPort {
  /** `${protocol}/${ip}/${port}`. */
  key: string;
  anyIp: boolean;
  /** The same protocol and port on 0.0.0.0. */
  anyIpKey: string;
  /** For anyIp: the prefix and suffix of every key with this protocol and port. */
  prefix: string;
  suffix: string;
}

function wantedPorts(pod: Pod): WantedPort[] {
  return podFacts(pod).hostPorts.map((key) => {
    const [protocol, ip, port] = [
      key.slice(0, key.indexOf('/')),
      key.slice(key.indexOf('/') + 1, key.lastIndexOf('/')),
      key.slice(key.lastIndexOf('/') + 1),
    ];
    return {
      key,
      anyIp: ip === ANY_IP,
      anyIpKey: `${protocol}/${ANY_IP}/${port}`,
      prefix: `${protocol}/`,
      suffix: `/${port}`,
    };
  });
}

function stateOf(pod: Pod, state: CycleState): WantedPort[] {
  let s = state.get(KEY) as WantedPort[] | undefined;
  if (s === undefined) {
    s = wantedPorts(pod);
    state.set(KEY, s);
  }
  return s;
}

function conflicts(w: WantedPort, info: NodeInfo): boolean {
  if (!w.anyIp) return info.hostPorts.has(w.key) || info.hostPorts.has(w.anyIpKey);
  for (const used of info.hostPorts)
    if (used.startsWith(w.prefix) && used.endsWith(w.suffix)) return true;
  return false;
}

export const NodePorts: FilterPlugin = {
  name: 'NodePorts',
  preFilter(pod, _view, state) {
    const wanted = wantedPorts(pod);
    if (wanted.length === 0) return SKIP;
    state.set(KEY, wanted);
  },
  filter(pod, info, _view, state) {
    if (info.hostPorts.size === 0) return undefined;
    const wanted = stateOf(pod, state);
    for (let i = 0; i < wanted.length; i++) if (conflicts(wanted[i], info)) return REASON_PORTS;
    return undefined;
  },
};
