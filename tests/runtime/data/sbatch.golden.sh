#!/bin/bash
#SBATCH --job-name=mixforge-med-lora
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --time=12:00:00
#SBATCH --output=/shared/runs/med/train.log
#SBATCH --open-mode=append
#SBATCH --signal=TERM@300
#SBATCH --gpus-per-node=8
#SBATCH --partition=gpu
#SBATCH --account=med

# mixforge job 0123456789ab: resubmit this script to resume from the newest checkpoint
set -eo pipefail
source /shared/venv/bin/activate
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export PYTHONUNBUFFERED=1
srun --kill-on-bad-exit=1 python -m torch.distributed.run --nnodes="$SLURM_NNODES" --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint="$head:29500" --rdzv_id="$SLURM_JOB_ID" -m mixforge.train.entry /shared/runs/med/run_config.json
