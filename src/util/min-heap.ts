/**
 * A binary min-heap ordered by `compare`: the stable topological sort and the executor's ready
 * queue both take the smallest item next in O(log n).
 *
 * @example
 * const heap = new MinHeap<number>((a, b) => a - b);
 * heap.push(3); heap.push(1); heap.pop(); // 1
 */
export class MinHeap<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  push(value: T): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(items[parent]!, items[i]!) <= 0) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  /** Removes and returns the smallest item; the heap must not be empty. */
  pop(): T {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.#compare(items[l]!, items[m]!) < 0) m = l;
        if (r < items.length && this.#compare(items[r]!, items[m]!) < 0) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i]!, items[m]!];
        i = m;
      }
    }
    return top;
  }
}
