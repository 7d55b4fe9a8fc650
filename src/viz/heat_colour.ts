// The heatmap colours every attention picture uses: dark blue -> cyan -> yellow -> red, interpolated from 5 anchors.
const ANCHORS: [number, number, number][] = [
  [10, 10, 80],
  [20, 110, 200],
  [60, 200, 170],
  [240, 220, 60],
  [220, 40, 30],
];

/** Colour of t in [0, 1] (clamped; NaN — a diverged step — draws as 0). */
export function heatColour(t: number): [number, number, number] {
  const x = (t > 0 ? Math.min(1, t) : 0) * (ANCHORS.length - 1);
  const i = Math.min(ANCHORS.length - 2, Math.floor(x));
  const f = x - i;
  const a = ANCHORS[i];
  const b = ANCHORS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}
