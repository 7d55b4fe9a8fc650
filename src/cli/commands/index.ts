// Every command module, in --help order. Each file exports one yargs CommandModule.
import type { CommandModule } from 'yargs';

import { engineGeneratorFactory } from '../../infer/eval_generator';
import { benchCommand } from './bench';
import { demoCommand } from './demo';
import { doctorCommand } from './doctor';
import { makeEvalCommand } from './eval';
import { inferCommand } from './infer';
import { planCommand } from './plan';
import { trainStage1Command, trainStage2Command } from './train';

export const commands: CommandModule<any, any>[] = [
  demoCommand,
  inferCommand,
  makeEvalCommand(engineGeneratorFactory),
  trainStage1Command,
  trainStage2Command,
  benchCommand,
  planCommand,
  doctorCommand,
];
