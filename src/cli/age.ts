/** Ages as kubectl shows them (apimachinery's duration.HumanDuration). */

/**
 * apimachinery's `duration.HumanDuration`: exact seconds below 2 minutes,
 * then two units while the smaller one still matters (2m30s, 3h5m, 2d5h,
 * 3y2d) and one when it does not. A clock skew of under two seconds reads
 * as "0s"; more as "<invalid>".
 */
export function humanDuration(ms: number): string {
  // Go's int() conversions truncate toward zero.
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  const two = (big: number, bu: string, small: number, su: string) =>
    small === 0 ? `${big}${bu}` : `${big}${bu}${small}${su}`;
  if (minutes < 10) return two(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return two(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return two(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return two(years, 'y', days % 365, 'd');
  return `${years}y`;
}

/** kubectl's AGE cell: the time since `fromIso`, or "<unknown>" when it is absent. */
export function formatAge(fromIso: string | undefined, now: Date): string {
  const t = fromIso ? Date.parse(fromIso) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
}
