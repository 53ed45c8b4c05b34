import { describe, expect, it } from 'vitest';
import { byteRange } from './versions.js';

describe('byte ranges', () => {
  it.each([
    [undefined, { start: 0, end: 999, partial: false }],
    ['bytes=0-99', { start: 0, end: 99, partial: true }],
    ['bytes=900-', { start: 900, end: 999, partial: true }],
    ['bytes=-100', { start: 900, end: 999, partial: true }],
    ['bytes=990-5000', { start: 990, end: 999, partial: true }],
    ['bytes=0-1,5-6', { start: 0, end: 1, partial: true }],
    ['bytes=1000-', undefined],
    ['bytes=5-4', undefined],
    ['bytes=-0', undefined],
    ['bytes=-', undefined],
    ['items=0-1', undefined],
  ])('%s', (header, want) => {
    expect(byteRange(header, 1000)).toEqual(want);
  });
});
