import { StringDecoder } from 'node:string_decoder';

/**
 * Cuts a process's output stream into lines for the application's parser. A carriage
 * return ends a line too: renderers and FFmpeg redraw their progress with `\r` and never
 * print a newline until the end. Bytes are decoded as UTF-8 across chunk boundaries.
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #maxLineChars: number;
  #partial = '';
  /** The last character seen was `\r`: a `\n` right after it ends no new line. */
  #afterCR = false;

  /** Lines longer than `maxLineChars` are cut (a binary dump must not grow memory). */
  constructor(maxLineChars = 64 * 1024) {
    this.#maxLineChars = maxLineChars;
  }

  push(data: Buffer | string): string[] {
    return this.#split(typeof data === 'string' ? data : this.#decoder.write(data));
  }

  /** The last, unterminated line, if any. */
  end(): string[] {
    const lines = this.#split(this.#decoder.end());
    if (this.#partial.length > 0) lines.push(this.#partial);
    this.#partial = '';
    return lines;
  }

  #split(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 10 /* \n */) {
        if (this.#afterCR && i === start && this.#partial.length === 0) {
          start = i + 1;
          this.#afterCR = false;
          continue;
        }
        lines.push(this.#partial + text.slice(start, i));
        this.#partial = '';
        start = i + 1;
        this.#afterCR = false;
      } else if (ch === 13 /* \r */) {
        lines.push(this.#partial + text.slice(start, i));
        this.#partial = '';
        start = i + 1;
        this.#afterCR = true;
      } else {
        this.#afterCR = false;
      }
    }
    this.#partial += text.slice(start);
    while (this.#partial.length > this.#maxLineChars) {
      lines.push(this.#partial.slice(0, this.#maxLineChars));
      this.#partial = this.#partial.slice(this.#maxLineChars);
    }
    return lines;
  }
}
