// Values read from other tools' ITF traces that refcheck's own states never hold: sets,
// tuples and variants with a payload. Kept as their own kinds so that they print as Quint
// prints them (Set(1, 2), (1, "a"), Some(Set())) and sets compare as sets. Integers beyond
// 2^53 are native bigints.

export class ItfSet {
  constructor(readonly items: unknown[]) {}
}

export class ItfTuple {
  constructor(readonly items: unknown[]) {}
}

export class ItfVariant {
  constructor(
    readonly tag: string,
    readonly value: unknown,
  ) {}
}

export type ItfValue = ItfSet | ItfTuple | ItfVariant;

export function isItfValue(v: unknown): v is ItfValue {
  return v instanceof ItfSet || v instanceof ItfTuple || v instanceof ItfVariant;
}

/** A canonical text of a value: equal values (sets in any order) give equal keys. */
export function valueKey(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return Number.isInteger(v) ? `${v}n` : String(v); // 1 and 1n are one integer
  if (v instanceof ItfSet) return `Set(${v.items.map(valueKey).sort().join(",")})`;
  if (v instanceof ItfTuple) return `Tup(${v.items.map(valueKey).join(",")})`;
  if (v instanceof ItfVariant) return `${JSON.stringify(v.tag)}(${valueKey(v.value)})`;
  if (Array.isArray(v)) return `[${v.map(valueKey).join(",")}]`;
  if (typeof v === "object" && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${valueKey(x)}`).join(",")}}`;
  return JSON.stringify(v) ?? String(v);
}
