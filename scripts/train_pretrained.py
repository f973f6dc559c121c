"""Rebuild a shipped generator from the `genprior train` command in its model card, then write the card again.

    OMP_NUM_THREADS=1 nohup python scripts/train_pretrained.py vae-fmnist-8 > runs/vae-fmnist-8.log 2>&1 &
    python scripts/train_pretrained.py --command 'genprior train --model vae ...' new-name   # a new model

The run checkpoints to runs/<name>/checkpoint.pt and resumes from it when started again (the command gets --resume);
when done, runs/<name>/model.pt is copied to genprior_nb/weights/<name>.pt and `pretrained.write_card` evaluates the
model on its test split and writes genprior_nb/weights/<name>.json, recording the command. A command with
`--max-minutes` (a wall-time budget) is recorded with `--stop-at <steps done>` instead, so the card's command
rebuilds the same model on any machine.
"""
import sys, json, shlex, shutil
from pathlib import Path
from genprior_nb.cli import main
from genprior_nb.pretrained import WEIGHTS_DIR, model_card, write_card

ROOT = Path(__file__).resolve().parents[1]

def card_command(command:str, steps_done:int, steps:int) -> str:
    "The command as the card records it: `--max-minutes X` becomes `--stop-at steps_done` when the budget ended the run."
    argv = shlex.split(command)
    if '--max-minutes' in argv:
        i = argv.index('--max-minutes'); del argv[i:i + 2]
        if steps_done < steps and '--stop-at' not in argv: argv += ['--stop-at', str(steps_done)]
    return shlex.join(argv)

def rebuild(name, command=None):
    command = command or model_card(name)['command']
    argv = shlex.split(command)
    if argv[:2] != ['genprior', 'train']: sys.exit(f"{name}: not a 'genprior train' command: {command}")
    out = ROOT/'runs'/name
    argv = [a for a in argv[1:]]
    i = argv.index('--out'); argv[i + 1] = str(out)
    if (out/'checkpoint.pt').exists(): argv.append('--resume')
    rc = main(argv)
    if rc: sys.exit(rc)
    record = json.loads((out/'train.json').read_text())
    record['command'] = card_command(command, record['steps_done'], record['train']['steps'])  # as written in the card, with its own --out
    shutil.copyfile(out/'model.pt', WEIGHTS_DIR/f'{name}.pt')
    card = write_card(name, record)
    print(f"{name}: {card['training']['steps_done']} steps, eval {card['eval']}", flush=True)

if __name__ == '__main__':
    args = sys.argv[1:]
    if args[:1] == ['--command']: rebuild(args[2], args[1])
    else:
        for n in args: rebuild(n)
