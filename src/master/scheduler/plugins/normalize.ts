/**
 * kube-scheduler's ways of rescaling raw scores to 0..100 (done in place,
 * as ScorePlugin.normalize does).
 */

/** DefaultNormalizeScore: the best gets 100, the rest in proportion; reversed, the lowest raw score wins. All zero stays 0 (100 reversed). */
export function normalizeToMax(scores: number[], reverse = false): void {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  for (let i = 0; i < scores.length; i++) {
    if (max === 0) scores[i] = reverse ? 100 : 0;
    else scores[i] = reverse ? 100 - (scores[i] * 100) / max : (scores[i] * 100) / max;
  }
}

/** The lowest raw score becomes 0, the highest 100 (InterPodAffinity's rule, for scores that may be negative). All equal: all 0. */
export function normalizeMinMax(scores: number[]): void {
  if (scores.length === 0) return;
  let min = Infinity;
  let max = -Infinity;
  for (const s of scores) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  const span = max - min;
  for (let i = 0; i < scores.length; i++)
    scores[i] = span > 0 ? ((scores[i] - min) * 100) / span : 0;
}
