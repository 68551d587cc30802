/** What a role name may look like; users and service clients carry roles into tokens (`roles` claim). */
import { z } from 'zod';

export const roleName = z.string().regex(/^[a-z0-9][a-z0-9:_.-]{0,63}$/i, 'a role is 1–64 letters, digits, ":", "_", "." or "-"');
