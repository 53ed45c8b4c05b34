import { describe, expect, it } from 'vitest';
import { LineSplitter } from './line-splitter.js';

describe('LineSplitter', () => {
  it('ends lines at \\n, \\r\\n and \\r, across chunk boundaries', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('a\nb\r'))).toEqual(['a', 'b']);
    expect(s.push(Buffer.from('\nprogress 1\rprogress 2\rpar'))).toEqual([
      'progress 1',
      'progress 2',
    ]);
    expect(s.push(Buffer.from('tial'))).toEqual([]);
    expect(s.end()).toEqual(['partial']);
  });

  it('decodes a character split between chunks', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('é\n');
    expect(s.push(bytes.subarray(0, 1))).toEqual([]);
    expect(s.push(bytes.subarray(1))).toEqual(['é']);
  });

  it('cuts an endless line', () => {
    const s = new LineSplitter(4);
    expect(s.push('abcdefghij')).toEqual(['abcd', 'efgh']);
    expect(s.end()).toEqual(['ij']);
  });
});
