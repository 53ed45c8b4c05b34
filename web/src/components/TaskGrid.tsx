/**
 * A job's tasks as a grid of cells coloured by state, each labelled with its frames, rendering
 * ones filled to their progress. Rows of cells are virtualized, so a 10,000-task job costs a
 * screenful of DOM nodes.
 */
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Task } from '../api.js';
import { frameRange } from '../format.js';

const CELL_W = 72;
const CELL_H = 22;
const GAP = 3;

export function TaskGrid(props: {
  tasks: Task[];
  selected: number | null;
  onSelect: (index: number) => void;
}): ReactNode {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(600);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const perRow = Math.max(1, Math.floor((width - 8 + GAP) / (CELL_W + GAP)));
  const rowCount = Math.ceil(props.tasks.length / perRow);
  const virtualizer = useVirtualizer({
    count: rowCount,
    getScrollElement: () => ref.current,
    estimateSize: () => CELL_H + GAP,
    overscan: 6,
  });
  const height = Math.min(320, rowCount * (CELL_H + GAP) + 8);

  return (
    <div className="task-grid" ref={ref} style={{ height }} aria-label="Tasks" role="listbox">
      <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
        {virtualizer.getVirtualItems().map((row) => (
          <div
            key={row.index}
            className="task-row"
            style={{ transform: `translateY(${row.start}px)`, gap: GAP }}
          >
            {props.tasks.slice(row.index * perRow, (row.index + 1) * perRow).map((t) => {
              const title = `Task ${t.index} · frames ${frameRange(t.frames)} · ${t.state}${
                t.worker ? ` · ${t.worker}` : ''
              }${t.attempt > 0 ? ` · attempt ${t.attempt}` : ''}${
                t.state === 'rendering' ? ` · ${Math.floor(t.progress)}%` : ''
              }${t.status ? ` · ${t.status}` : ''}`;
              return (
                <button
                  key={t.index}
                  type="button"
                  data-view
                  role="option"
                  aria-selected={props.selected === t.index}
                  data-task={t.index}
                  data-state={t.state}
                  className={`task-cell state-${t.state}${props.selected === t.index ? ' selected' : ''}`}
                  style={{
                    width: CELL_W,
                    height: CELL_H,
                    ...(t.state === 'rendering'
                      ? { ['--progress' as string]: `${Math.floor(t.progress)}%` }
                      : {}),
                  }}
                  title={title}
                  onClick={() => props.onSelect(t.index)}
                >
                  {frameRange(t.frames)}
                </button>
              );
            })}
          </div>
        ))}
      </div>
    </div>
  );
}
