// Chatters pick their own name colour (or Twitch picks one), often
// unreadable on one of our themes (#0000FF on dark, #00FF7F on light).
// `nameColors` keeps the hue and moves the lightness until the name
// reaches WCAG's 4.5:1 against every background a chat line can have.

type Rgb = [number, number, number];

/** Twitch's colours for chatters who never chose one. */
const DEFAULTS = [
  "#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500", "#2E8B57",
  "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2", "#00FF7F",
];

/** Backgrounds of chat lines (panel, highlighted) per theme; see style.css. */
const LIGHT_BGS: Rgb[] = [[0xff, 0xff, 0xff], [0xee, 0xf2, 0xff]];
const DARK_BGS: Rgb[] = [[0x1a, 0x1d, 0x24], [0x1d, 0x21, 0x40]];
const MIN_CONTRAST = 4.5;

function parseHex(c: string): Rgb | null {
  const m = /^#?([0-9a-f]{6})$/i.exec(c.trim());
  if (!m) return null;
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function toHex([r, g, b]: Rgb): string {
  return "#" + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
}

function luminance(rgb: Rgb): number {
  const [r, g, b] = rgb.map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: Rgb, b: Rgb): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/** `rgb` mixed towards `target` just enough to read on every one of `bgs`. */
function readableOn(rgb: Rgb, bgs: Rgb[], target: Rgb): Rgb {
  for (let step = 0; step <= 20; step++) {
    const t = step / 20;
    const mixed = rgb.map((v, i) => v + (target[i] - v) * t) as Rgb;
    if (bgs.every((bg) => contrast(mixed, bg) >= MIN_CONTRAST)) return mixed;
  }
  return target;
}

/** The colour Twitch would give `login` when it has none (stable per login). */
export function defaultColor(login: string): string {
  let h = 0;
  for (const ch of login) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return DEFAULTS[h % DEFAULTS.length];
}

/** The chatter's colour made readable for the light and the dark theme. */
export function nameColors(color: string, login: string): { light: string; dark: string } {
  const rgb = parseHex(color) ?? parseHex(defaultColor(login))!;
  return {
    light: toHex(readableOn(rgb, LIGHT_BGS, [0, 0, 0])),
    dark: toHex(readableOn(rgb, DARK_BGS, [255, 255, 255])),
  };
}
