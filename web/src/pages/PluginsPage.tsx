/**
 * Event plugins: state (Disabled / Opt-In / Global) and a configuration form generated from
 * each plugin's schema (`ConfigEntry`s, grouped by category). The manager validates on save;
 * its 400 names the field (`config.<key>`) and the message is shown under that input.
 */
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import {
  api,
  ApiError,
  type ConfigEntry,
  type ConfigValue,
  type PluginState,
  type PluginView,
} from '../api.js';
import { ErrorNote, PageHeader } from '../components/bits.js';
import { useFeedGeneration } from '../live.js';

const states: PluginState[] = ['disabled', 'opt-in', 'global'];

/** Text as typed, per key; turned into values on save. */
type Draft = Record<string, string | boolean>;

function draftOf(plugin: PluginView): Draft {
  return Object.fromEntries(
    plugin.schema.map((e) => {
      const v = plugin.config[e.key] ?? e.default;
      // A password is never sent back: an empty field means "unchanged".
      if (e.type === 'password') return [e.key, ''];
      return [e.key, typeof v === 'boolean' ? v : String(v)];
    }),
  );
}

/** The changed entries, as the API takes them. Integers go as typed: the manager checks them. */
function changesOf(plugin: PluginView, draft: Draft): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  const base = draftOf(plugin);
  for (const e of plugin.schema) {
    const v = draft[e.key];
    if (v === undefined || v === base[e.key]) continue;
    if (e.type === 'integer' && typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) {
      out[e.key] = Number(v);
    } else {
      out[e.key] = v;
    }
  }
  return out;
}

function Field(props: {
  entry: ConfigEntry;
  value: string | boolean;
  error: string | undefined;
  onChange: (v: string | boolean) => void;
  id: string;
}): ReactNode {
  const { entry: e, value, id } = props;
  const common = {
    id,
    name: e.key,
    'aria-invalid': props.error ? true : undefined,
    'aria-describedby': props.error ? `${id}-error` : undefined,
  };
  let input: ReactNode;
  switch (e.type) {
    case 'boolean':
      input = (
        <input
          {...common}
          type="checkbox"
          checked={value === true}
          onChange={(ev) => props.onChange(ev.target.checked)}
        />
      );
      break;
    case 'enum':
      input = (
        <select
          {...common}
          value={String(value)}
          onChange={(ev) => props.onChange(ev.target.value)}
        >
          {e.items.map((i) => (
            <option key={i} value={i}>
              {i || '(blank)'}
            </option>
          ))}
        </select>
      );
      break;
    case 'multiline':
      input = (
        <textarea
          {...common}
          rows={3}
          value={String(value)}
          onChange={(ev) => props.onChange(ev.target.value)}
        />
      );
      break;
    case 'integer':
      input = (
        <input
          {...common}
          type="text"
          inputMode="numeric"
          className="narrow"
          value={String(value)}
          onChange={(ev) => props.onChange(ev.target.value)}
        />
      );
      break;
    default:
      input = (
        <input
          {...common}
          type={e.type === 'password' ? 'password' : 'text'}
          placeholder={e.type === 'password' ? '(unchanged)' : undefined}
          className={e.type === 'path' ? 'wide mono' : 'wide'}
          value={String(value)}
          onChange={(ev) => props.onChange(ev.target.value)}
        />
      );
  }
  const hint =
    e.type === 'integer'
      ? `${e.min}–${e.max}, default ${e.default}`
      : `default ${String(e.default) || '(blank)'}`;
  return (
    <div className={props.error ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{e.label}</label>
      <div className="control">
        {input}
        {props.error && (
          <div className="field-error" id={`${id}-error`} role="alert">
            {props.error}
          </div>
        )}
        <div className="hint">
          {e.description ? `${e.description} · ` : ''}
          <span className="muted">{hint}</span>
        </div>
      </div>
    </div>
  );
}

function PluginCard(props: { plugin: PluginView; onSaved: (p: PluginView) => void }): ReactNode {
  const { plugin } = props;
  const [draft, setDraft] = useState<Draft>(() => draftOf(plugin));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [note, setNote] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const save = async (body: { state?: PluginState; config?: Record<string, ConfigValue> }) => {
    setSaving(true);
    try {
      const saved = await api.configurePlugin(plugin.name, body);
      props.onSaved(saved);
      setErrors({});
      setDraft(draftOf(saved));
      setNote(body.state ? `State: ${saved.state}` : 'Saved.');
    } catch (err) {
      if (err instanceof ApiError && err.field?.startsWith('config.')) {
        const key = err.field.slice('config.'.length);
        setErrors({ [key]: err.message.replace(`${err.field}: `, '') });
        setNote('Not saved: fix the highlighted setting.');
      } else {
        setNote(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setSaving(false);
    }
  };
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    const config = changesOf(plugin, draft);
    if (Object.keys(config).length === 0) {
      setNote('Nothing changed.');
      return;
    }
    void save({ config });
  };

  const categories = new Map<string, ConfigEntry[]>();
  for (const e of plugin.schema) {
    const c = e.category ?? 'Options';
    categories.set(c, [...(categories.get(c) ?? []), e]);
  }

  return (
    <section className="panel plugin" aria-label={`Plugin ${plugin.name}`}>
      <div className="panel-head">
        <h2>{plugin.name}</h2>
        <div className="segmented" role="radiogroup" aria-label={`State of ${plugin.name}`}>
          {states.map((s) => (
            <button
              key={s}
              role="radio"
              aria-checked={plugin.state === s}
              className={plugin.state === s ? `on state-${s}` : ''}
              disabled={saving}
              onClick={() => plugin.state !== s && void save({ state: s })}
            >
              {s}
            </button>
          ))}
        </div>
        <span className="spacer" />
        <span className="muted">{plugin.handlers.join(', ')}</span>
      </div>
      <p className="description">{plugin.description}</p>
      {plugin.schema.length > 0 && (
        <form onSubmit={submit} noValidate aria-label={`Settings of ${plugin.name}`}>
          {[...categories.entries()].map(([category, entries]) => (
            <fieldset key={category}>
              <legend>{category}</legend>
              {entries.map((e) => (
                <Field
                  key={e.key}
                  id={`${plugin.name}-${e.key}`}
                  entry={e}
                  value={draft[e.key] ?? ''}
                  error={errors[e.key]}
                  onChange={(v) => {
                    setDraft((d) => ({ ...d, [e.key]: v }));
                    setErrors((old) => {
                      const { [e.key]: _gone, ...rest } = old;
                      return rest;
                    });
                  }}
                />
              ))}
            </fieldset>
          ))}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={saving}>
              Save settings
            </button>
            <button type="button" disabled={saving} onClick={() => setDraft(draftOf(plugin))}>
              Reset
            </button>
            {note && (
              <span className="muted" role="status">
                {note}
              </span>
            )}
          </div>
        </form>
      )}
    </section>
  );
}

export function PluginsPage(): ReactNode {
  const generation = useFeedGeneration();
  const [plugins, setPlugins] = useState<PluginView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setPlugins(await api.listPlugins());
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, []);
  useEffect(() => {
    if (generation > 0) void load();
  }, [generation, load]);

  return (
    <div className="page">
      <PageHeader title="Event plugins">
        <span className="count">{plugins ? `${plugins.length} plugins` : 'loading…'}</span>
      </PageHeader>
      <ErrorNote error={error} />
      {plugins?.length === 0 && <p className="muted">This manager runs no event plugins.</p>}
      {plugins?.map((p) => (
        <PluginCard
          key={p.name}
          plugin={p}
          onSaved={(saved) =>
            setPlugins((old) => old?.map((o) => (o.name === saved.name ? saved : o)) ?? null)
          }
        />
      ))}
    </div>
  );
}
