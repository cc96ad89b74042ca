/**
 * Why a pod fits nowhere, in kube-scheduler's words: "0/5 nodes are
 * available: 3 Insufficient memory, 2 node(s) had untolerated taint
 * {gpu: true}." Each node is counted under the reason its first refusing
 * filter gave, so the counts add up to the nodes examined.
 */

/** `reasons`: how many nodes each reason refused; listed by reason text, so the message is stable. */
export function explainUnschedulable(total: number, reasons: Map<string, number>): string {
  if (total === 0) return '0/0 nodes are available: no nodes registered.';
  const parts = [...reasons.entries()]
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([reason, count]) => `${count} ${reason}`);
  return parts.length === 0
    ? `0/${total} nodes are available.`
    : `0/${total} nodes are available: ${parts.join(', ')}.`;
}
