import { useEffect, useState } from 'react';
import { api } from './api.js';

export type Me = Awaited<ReturnType<typeof api.whoami>>;

/**
 * Who is looking: the token's name and role (undefined until known, or when the manager
 * refuses). Pages show only the actions the API would allow.
 */
export function useMe(): Me | undefined {
  const [me, setMe] = useState<Me>();
  useEffect(() => {
    api.whoami().then(setMe, () => setMe(undefined));
  }, []);
  return me;
}
