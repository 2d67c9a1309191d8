"""What the PyTorch peers of our benchmarks share: the device set up the way hpt runs it, and a
line naming the peer for the JSON results."""
import torch


def setup(device, threads, tf32):
    """Threads for the CPU, and on CUDA cuDNN's benchmark mode (fixed shapes, as a MoCo run has,
    where the one-time search pays off as ours does) with TF32 as hpt's switch says, so both sides
    compute in the same precision. Returns (torch.device, peer description)."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        return dev, "pytorch %s cuda %s on %s (cuDNN %s, benchmark on, TF32 %s)" % (
            torch.__version__, torch.version.cuda, torch.cuda.get_device_name(dev), torch.backends.cudnn.version(),
            "on" if tf32 else "off")
    return dev, "pytorch %s (%d threads%s)" % (
        torch.__version__, torch.get_num_threads(), ", oneDNN" if torch.backends.mkldnn.is_available() else "")
