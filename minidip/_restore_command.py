"""``minidip restore``: inpainting, super-resolution and deblurring of an image file.

The command line around :func:`minidip.restore.restore`; :mod:`minidip.cli` registers it.  Bad
input raises :class:`minidip.cli.UsageError` or ValueError, which the CLI prints as one line
with exit code 2.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run", "DEMO_DOWNSAMPLE", "DEMO_MISSING"]

#: The demo without INPUT: grace_hopper in colour, 4x4-averaged to 150 x 128, with a random
#: pixel mask that hides this fraction of the pixels (drawn from --seed).
DEMO_DOWNSAMPLE, DEMO_MISSING = 4, 0.5

HELP = """Restore an image (PNG/JPEG, colour or grayscale, or a 1-D/2-D .npy signal) from
linear measurements by fitting an untrained generator through the forward operator (E21):
inpainting (--mask, white = known pixel), super-resolution (--downsample F: INPUT is the
low-resolution image, the output is F times larger) or deblurring (--blur SPEC).  Colour stays
colour.  Without --noise-std the fit runs all --steps (noise-free data: it converges to the
kernel interpolant E23); with it, the discrepancy rule stops it early.  With --simulate, INPUT
is the clean image: the operator (and --add-noise) is applied first and PSNRs against INPUT are
reported.  Without INPUT: a demo on grace_hopper (colour, 150x128) with a random 50% pixel
mask, reporting PSNRs on the missing pixels against the harmonic fill.  The output is written
atomically and never replaces the input; Ctrl-C writes the best output so far."""


def add_parser(sub, positive):
    """Register ``restore`` on the subparsers ``sub``; ``positive`` parses positive numbers."""
    from . import restore as rs

    cmd = sub.add_parser("restore", help="inpaint, super-resolve or deblur an image by fitting "
                         "a generator through the forward operator", description=HELP)
    cmd.add_argument("input", nargs="?", help="PNG, JPEG or .npy file: the measurements (the "
                     "image with holes, the low-resolution or the blurred image); default: the "
                     "grace_hopper demo")
    kind = cmd.add_mutually_exclusive_group()
    kind.add_argument("--mask", help="PNG/JPEG/.npy of the image's size, white (> 0.5) = known "
                      "pixel (inpainting)")
    kind.add_argument("--downsample", type=positive(int), metavar="F",
                      help="super-resolution by the factor F (block-mean downsampling model)")
    kind.add_argument("--blur", metavar="SPEC", help='the blur of INPUT as a filter spec, e.g. '
                      '"gaussian:1.5" (normalised to sum 1)')
    cmd.add_argument("--noise-std", type=positive(float), help="std of the noise in INPUT, if "
                     "known: the fit then stops by the discrepancy rule")
    cmd.add_argument("--model", choices=rs.MODELS, default="two-layer",
                     help="generator (default two-layer; deep needs minidip's deep decoder)")
    cmd.add_argument("--out", help="output file (default: INPUT stem + '_restored' + suffix)")
    cmd.add_argument("--simulate", action="store_true", help="INPUT is the clean image: "
                     "measure it through the operator first and report PSNRs against it")
    cmd.add_argument("--add-noise", type=positive(float), help="with --simulate: add Gaussian "
                     "noise of this std to the measurements")
    cmd.add_argument("--filter", help=f"two-layer filter spec (default {rs.DEFAULT_FILTER[2]} "
                     f"for images, {rs.DEFAULT_FILTER[1]} for 1-D)")
    cmd.add_argument("--channels", type=positive(int), help=f"width (default "
                     f"{rs.DEFAULT_CHANNELS} two-layer, {rs.DEEP_CHANNELS} deep)")
    cmd.add_argument("--steps", type=positive(int), default=rs.DEFAULT_STEPS,
                     help=f"most steps (default {rs.DEFAULT_STEPS})")
    cmd.add_argument("--stop", default=rs.DEFAULT_STOP, help="stop rule: auto (default: "
                     "discrepancy with --noise-std, else none), none, discrepancy, variance, "
                     "oracle (needs --simulate)")
    cmd.add_argument("--seed", type=positive(int, allow_zero=True), default=0,
                     help="seed of the weights, the demo's mask and the added noise")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(run=run)


def _usage(message):
    from .cli import UsageError
    return UsageError(message)


def _size(shape) -> str:
    return "x".join(map(str, shape))


def _check_output(out: Path, inputs):
    for path in inputs:
        if out.resolve() == path.resolve() or (out.exists() and path.exists()
                                               and os.path.samefile(out, path)):
            raise _usage(f"the output {out} is the input file {path}; choose another --out")
    if not out.parent.is_dir():
        raise _usage(f"cannot write {out}: directory {out.parent} does not exist")


def _operator(args, grid, simulate):
    """(operator, description, output grid) for the image grid ``grid`` of INPUT."""
    import minidip as md

    if args.mask is not None:
        known = md.data.load(args.mask) > 0.5
        if known.shape != grid:
            raise _usage(f"the mask {args.mask} is {_size(known.shape)} but the image is "
                         f"{_size(grid)} (rows x columns); give a mask of the image's size "
                         "(white = known)")
        op = md.operators.Mask(known)
        return op, f"inpainting, mask {args.mask} ({op.measurements} of {known.size} known)"
    if args.downsample is not None:
        shape = grid if simulate else tuple(args.downsample * n for n in grid)
        op = md.operators.Downsample(args.downsample, shape=shape)
        return op, f"super-resolution x{args.downsample} (block mean)"
    if args.blur is not None:
        taps = md.filters.parse_filter(args.blur, len(grid))
        if not taps.sum() > 0:
            raise _usage(f"blur {args.blur!r} has taps summing to {taps.sum():.3g}; a blur needs "
                         "a positive sum (it is normalised to 1)")
        return md.operators.Blur(taps / taps.sum(), grid), f"deblurring {args.blur}"
    return None, ""


def _demo_mask(grid, seed):
    import minidip as md
    known = np.random.default_rng(seed).random(grid) >= DEMO_MISSING
    return md.operators.Mask(known), f"inpainting, random mask ({DEMO_MISSING:.0%} missing, " \
                                     f"seed {seed})"


def run(args):
    """Restore INPUT (or the grace_hopper demo) and write the result."""
    import minidip as md
    from . import restore as rs

    if args.stop not in ("auto", "none", *md.stopping.RULES):
        raise _usage(f"unknown stop rule {args.stop!r}; choose auto, none or one of "
                     f"{', '.join(sorted(md.stopping.RULES))}")
    demo = args.input is None
    simulate = args.simulate or demo
    if args.add_noise is not None and not simulate:
        raise _usage("--add-noise needs --simulate (INPUT is then the clean image)")
    if args.stop == "oracle" and not simulate:
        raise _usage("--stop oracle needs the clean image: use --simulate")
    protect = []
    if demo:
        image = md.data.grace_hopper(downsample=DEMO_DOWNSAMPLE, color=True)
        source = f"grace_hopper (colour, {DEMO_DOWNSAMPLE}x{DEMO_DOWNSAMPLE}-averaged)"
        out = Path(args.out or "grace_hopper_restored.png")
    else:
        path = Path(args.input)
        source = str(path)
        out = Path(args.out) if args.out else path.with_name(f"{path.stem}_restored{path.suffix}")
        protect = [path] + ([Path(args.mask)] if args.mask else [])
        _check_output(out, protect)
        image = md.data.load(path, color=True)
    colour = image.ndim == 3
    grid = image.shape[1:] if colour else image.shape
    if len(grid) == 1 and out.suffix.lower() != ".npy":
        raise _usage(f"a 1-D signal cannot be written as {out.suffix or 'a file without suffix'}"
                     "; use an --out ending in .npy")
    if not out.parent.is_dir():
        raise _usage(f"cannot write {out}: directory {out.parent} does not exist")
    op, what = _operator(args, grid, simulate)
    if op is None:
        if not demo:
            raise _usage("say what happened to INPUT: --mask MASK, --downsample F or --blur SPEC")
        op, what = _demo_mask(grid, args.seed)

    clean = None
    if simulate:
        clean = image
        y = np.stack([op.forward(c) for c in image]) if colour else op.forward(image)
        if args.add_noise is not None:
            y = y + args.add_noise * np.random.default_rng(args.seed).standard_normal(y.shape)
    elif isinstance(op, md.operators.Mask):
        y = np.where(op.mask, image, 0.0)                        # unknown pixels: ignored
    else:
        y = image
    stop = None if args.stop == "none" else args.stop
    interrupted = False
    try:
        res = rs.restore(y, op, model=args.model, filter=args.filter, channels=args.channels,
                         steps=args.steps, stop=stop, noise_std=args.noise_std, seed=args.seed,
                         clean=clean, progress=not args.no_progress)
    except md.FitInterrupted as interrupt:
        res, interrupted = interrupt.result, True
    except md.FitDivergedError as err:
        raise _usage(str(err)) from None
    md.data.save(out, res.output, protect=protect)
    _report(args, res, y, op, clean, source, what, colour, out, interrupted)
    return 130 if interrupted else 0


def _report(args, res, y, op, clean, source, what, colour, out, interrupted):
    import minidip as md
    from . import restore as rs

    shape = res.output.shape[1:] if colour else res.output.shape
    model = args.model
    if model == "two-layer":
        model += f", filter {args.filter or rs.DEFAULT_FILTER[len(shape)]}"
    rule = args.stop if args.stop != "auto" else ("discrepancy" if args.noise_std else "none")
    print(f"minidip restore: {source}, {'colour' if colour else 'grayscale'} "
          f"{_size(shape)}, {what}; {model}, stop rule {rule!r}")
    per_channel = isinstance(res.stopped_at, tuple)          # colour fitted channel by channel
    names = ("R", "G", "B") if per_channel else ("",)
    stops = res.stopped_at if per_channel else (res.stopped_at,)
    infos = res.info["channels"] if per_channel else [res.info]
    print("  stopped at         " + ", ".join(
        f"iteration {s}" + (f" ({n})" if n else "") for s, n in zip(stops, names))
        + f" of at most {args.steps}")
    sigma = [i["noise_std"] for i in infos if "noise_std" in i]
    if sigma:
        how = "estimated" if infos[0].get("noise_std_estimated") else "given"
        print(f"  noise std          {', '.join(f'{s:.4g}' for s in sigma)} ({how})")
    if isinstance(op, md.operators.Mask):
        known = np.broadcast_to(op.mask, res.output.shape)
        change = float(np.sqrt(np.mean((res.output - y)[known] ** 2)))
        note = ""
        if args.noise_std is not None:
            note = f" (noise level {args.noise_std:.4g}, given)"
        else:
            try:
                level = float(np.sqrt(np.mean([op.estimate_noise_std(c) ** 2
                                               for c in (y if colour else [y])])))
                note = f" (noise level {level:.4g}, estimated from the known pixels)"
            except ValueError:                       # no 2x2 block of known pixels
                pass
        print(f"  known pixels       RMS change {change:.4g}{note}")
    if clean is not None:
        _report_psnr(res, y, op, clean, colour, args.filter)
    if interrupted:
        where = (f"iteration {res.stopped_at} under {rule!r}" if not per_channel else
                 f"colour channel {names[res.info['interrupted_channel']]}; iterations "
                 + ", ".join(f"{s} ({n})" for s, n in zip(stops, names))
                 + ", a channel not started holds its offset")
        print(f"  interrupted: wrote the best output so far ({where}) to {out}")
        return
    print(f"  wrote {out}")


def _report_psnr(res, y, op, clean, colour, filter):
    import minidip as md
    from . import restore as rs

    span = float(np.ptp(clean)) or 1.0 if clean.ndim == 1 else 1.0
    region, where = None, ""
    if isinstance(op, md.operators.Mask):
        region, where = np.broadcast_to(~op.mask, clean.shape), " on the missing pixels"
        if not region.any():
            region, where = None, ""

    def psnr(estimate):
        if region is None:
            return md.metrics.psnr(estimate, clean, data_range=span)
        return md.metrics.psnr(estimate[region], clean[region], data_range=span)

    rows = [("generator", res.output), ("E23 interpolant", rs.interpolant(y, op, filter=filter))]
    reference = rs.baseline(y, op)
    if reference is not None:
        rows.append(("harmonic fill" if isinstance(op, md.operators.Mask) else "bicubic",
                     reference))
    if isinstance(op, md.operators.Blur):
        rows.append(("blurred input", y))
    print(f"  PSNR{where} (dB)" + "".join(f"   {name} {psnr(x):.2f}" for name, x in rows))
