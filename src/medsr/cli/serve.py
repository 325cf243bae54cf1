"""`medsr pacs` and `medsr serve`: medsr as a service (DICOMweb, the web page)."""

from __future__ import annotations

from typing import Annotated

import typer

from medsr.cli.base import app, check_options, user_errors


@app.command("pacs")
def pacs(
    url: str = typer.Argument(..., help="DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web"),
    model: str = typer.Option(..., "--model", help="Registered name, checkpoint .pt or .onnx."),
    patient_id: str | None = typer.Option(None, "--patient-id", help="PatientID to match."),
    study: str | None = typer.Option(None, "--study", help="StudyInstanceUID to match."),
    series: str | None = typer.Option(None, "--series", help="SeriesInstanceUID to match."),
    modality: str | None = typer.Option(None, "--modality", help="Modality, e.g. CT or CR."),
    date: str | None = typer.Option(None, "--date", help="StudyDate YYYYMMDD[-YYYYMMDD]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be processed."),
    watch: bool = typer.Option(False, "--watch", help="Poll for new matching series."),
    interval: float = typer.Option(60.0, help="Seconds between polls with --watch."),
    max_polls: int = typer.Option(0, help="Stop --watch after this many polls (0: never)."),
    state: str = typer.Option(
        "medsr-pacs-state.sqlite", help="State file: each series is processed once."
    ),
    work_dir: str | None = typer.Option(
        None, help="Work folder (default: STATE.work, next to the state file)."
    ),
    credentials: str | None = typer.Option(
        None,
        help="JSON file with username/password or token (else $MEDSR_PACS_USERNAME and "
        "$MEDSR_PACS_PASSWORD, or $MEDSR_PACS_TOKEN).",
    ),
    ca_bundle: str | None = typer.Option(None, help="PEM file of trusted CAs for https."),
    client_cert: str | None = typer.Option(None, help="PEM client certificate (mutual TLS)."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Skip TLS verification (test servers only)."
    ),
    timeout: float = typer.Option(120.0, help="Seconds per HTTP request."),
    stow_batch: int = typer.Option(50, help="Instances per STOW-RS request."),
    backend: str = typer.Option("torch", help="torch or onnx (onnxruntime)."),
    device: str = typer.Option("cpu", help="cpu, cuda (cuda:LOCAL_RANK under torchrun), auto."),
    tile: str = typer.Option(
        "auto",
        help="auto: the whole image in one pass when it fits the memory budget, else the "
        "largest tiles that fit (fastest); a tile side in input pixels; 0: whole image.",
    ),
    overlap: int = typer.Option(32, help="Tile overlap in input pixels."),
) -> None:
    """Enhance series from a DICOMweb PACS and store the derived series back into their
    study (QIDO-RS, WADO-RS, STOW-RS). Research use only.

    Works under `torchrun --nproc-per-node N -m medsr.cli pacs ...`: the series are shared
    out over the processes, rank 0 prints one summary."""
    from pathlib import Path

    from medsr.apps.enhance import parse_tile
    from medsr.inference.shard import join_shard, leave_shard
    from medsr.pacs import (
        PacsOptions,
        Selection,
        TlsOptions,
        connect,
        list_series,
        load_credentials,
        run_pacs,
    )

    with user_errors():
        check_options(device=device)
        selection = Selection(patient_id, study, series, modality, date)
        options = PacsOptions(
            model=model,
            state_path=Path(state),
            work_dir=Path(work_dir) if work_dir else None,
            backend=backend,
            device=device,
            tile=parse_tile(tile, overlap),
            overlap=overlap,
            stow_batch=stow_batch,
        )
        tls = TlsOptions(ca_bundle=ca_bundle, verify=not insecure, client_cert=client_cert)
        client = connect(url, load_credentials(credentials), tls, timeout_s=timeout)
        shard = join_shard()
        if shard.is_main:
            typer.echo(
                "medsr pacs: research use only; derived series are marked so and are "
                "not for diagnosis",
                err=True,
            )
        if dry_run:
            if shard.is_main:
                list_series(client, selection, options, report=typer.echo)
            leave_shard()
            return
        try:
            per_rank = run_pacs(
                client,
                selection,
                options,
                shard=shard,
                watch=watch,
                interval_s=interval,
                max_polls=max_polls,
                report=typer.echo,
            )
        except KeyboardInterrupt:
            typer.echo(f"medsr pacs: interrupted; {state} keeps what is done", err=True)
            raise typer.Exit(130) from None
        leave_shard()
    if any(counts.failed for counts in per_rank):
        raise typer.Exit(1)


@app.command("serve")
def serve(
    model_args: Annotated[
        list[str] | None,
        typer.Argument(help="More models (so `--models a.pt b.pt` works).", show_default=False),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Registered names or checkpoints (default: every installed model).",
            show_default=False,
        ),
    ] = None,
    host: str = typer.Option("127.0.0.1", help="Interface (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Threads running models at once."),
    queue: int = typer.Option(4, help="Requests waiting for a worker before 503."),
    timeout: float = typer.Option(600.0, help="Seconds per request before 504."),
    max_upload_mb: float = typer.Option(64.0, help="Largest request body (413 above)."),
    max_megapixels: float = typer.Option(40.0, help="Largest input, all slices (422 above)."),
    max_output_megapixels: float = typer.Option(
        67.2, help="Largest output (8192^2): a model's input cap is this over its scale squared."
    ),
    keep_results: int = typer.Option(8, help="Results kept in memory for viewing/download."),
    max_result_mb: float = typer.Option(1024.0, help="Memory for kept results (oldest dropped)."),
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Host header value to serve besides 127.0.0.1/localhost/::1 (repeat; '*': any).",
        ),
    ] = None,
    max_connections: int = typer.Option(64, help="Connections at once (503 above)."),
    header_timeout: float = typer.Option(10.0, help="Seconds to send request headers."),
    body_timeout: float = typer.Option(30.0, help="Seconds a request body may stall (408)."),
    store_dir: str | None = typer.Option(
        None, help="Also save every result here (default: nothing is written to disk)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, mps or auto."),
) -> None:
    """Serve the web page and JSON API (FastAPI + uvicorn). Research use only."""
    from pathlib import Path

    try:
        check_options(device=device)
        import uvicorn

        from medsr.web.app import create_app
        from medsr.web.limits import Settings
        from medsr.web.server import uvicorn_options

        settings = Settings(
            max_upload_bytes=int(max_upload_mb * 2**20),
            max_pixels=int(max_megapixels * 1e6),
            max_output_pixels=int(max_output_megapixels * 1e6),
            max_result_bytes=int(max_result_mb * 2**20),
            allowed_hosts=("127.0.0.1", "localhost", "::1", *(allow_host or [])),
            max_connections=max_connections,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            workers=workers,
            queue=queue,
            timeout_s=timeout,
            keep_results=keep_results,
            store_dir=Path(store_dir) if store_dir else None,
            device=device,
        )
        web_app = create_app([*(models or []), *(model_args or [])], settings)
    except ImportError as error:
        typer.echo(f"error: {error}; install the web extra: pip install 'medsr[web]'", err=True)
        raise typer.Exit(2) from None
    except (ValueError, OSError) as error:
        typer.echo(f"error: {str(error).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None
    import logging

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medsr.web").setLevel(logging.INFO)  # request ids and sizes, no names
    typer.echo(f"medsr: http://{host}:{port}/ (research use only)")
    if host not in settings.allowed_hosts and "*" not in settings.allowed_hosts:
        typer.echo(
            f"medsr: only Host values {', '.join(settings.allowed_hosts)} are answered; "
            "add the name clients use with --allow-host NAME",
            err=True,
        )
    uvicorn.run(web_app, host=host, port=port, log_level="info", **uvicorn_options(settings))
