// Every command module, in --help order. Each file exports one yargs CommandModule.
import type { CommandModule } from 'yargs';

import { inferCommand } from './infer';
import { doctorCommand } from './doctor';

export const commands: CommandModule<any, any>[] = [inferCommand, doctorCommand];
