"""Spec values the launcher refuses, each with a fragment of its message: the launcher's and the chart's
tests run the same cases."""

from __future__ import annotations

import datetime
from typing import Any

BIG_ANNOTATION = "x" * (256 * 1024)
BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Not_A_Name"}, "name: 'Not_A_Name' is not a valid DNS label"),
    ({"name": "x" * 53}, "name: String should have at most 52 characters"),
    ({"namespace": "Team A"}, "namespace: 'Team A' is not a valid DNS label"),
    ({"image": ""}, "image: '' is not a valid value (no spaces)"),
    ({"image": None}, "image: Input should be a valid string"),
    ({"model": ""}, "model: must not be empty"),
    ({"output": ""}, "output: must not be empty"),
    ({"env": {"AWS_SECRET_ACCESS_KEY": "hunter2"}}, "env: AWS_SECRET_ACCESS_KEY is set by the manifest"),
    ({"env": {"DB_PASSWORD": "hunter2"}}, "DB_PASSWORD looks like a secret"),
    ({"env": {"FT_OUTPUT": "/elsewhere"}}, "env: FT_OUTPUT is set by the manifest"),
    ({"env": {"ft_workers": "2"}}, "env: ft_workers is set by the manifest"),
    ({"env": {"HOME": "/root"}}, "env: HOME is set by the manifest"),
    ({"storage": {"endpoint": "https://key:secret@s3.example.com"}}, "storage.endpoint: credentials in a URL"),
    ({"storage": {"endpoint": "s3.example.com"}}, "storage.endpoint: 's3.example.com' is not a valid endpoint URL"),
    ({"model": "https://user:pw@hub.example.com/x.md"}, "model: credentials in a URL are refused"),
    ({"train_data": "s3://key:secret@bucket/train"}, "train_data: credentials in a URL are refused"),
    ({"settings": {"hub_mirror": "https://u:p@mirror"}}, "settings.hub_mirror: credentials in a URL are refused"),
    ({"env": {"INDEX": "https://u:p@pypi.example.com"}}, "env.INDEX: credentials in a URL are refused"),
    ({"settings": {"epoch": 5}}, "settings.epoch: not a job setting (did you mean epochs?)"),
    ({"settings": {"epochs": "sixty"}}, "settings.epochs: Input should be a valid integer"),
    ({"settings": {"device_target": "gpu"}}, "settings.device_target: Input should be 'CPU', 'GPU' or 'Ascend'"),
    ({"settings": {"output": "/x"}}, "settings.output: set by the manifest itself"),
    ({"settings": {"s3_credentials_dir": "/x"}}, "settings.s3_credentials_dir: set by the manifest itself"),
    ({"resources": {"memory": "lots"}}, "resources.memory: 'lots' is not a valid Kubernetes quantity"),
    (
        {"resources": {"accelerators": 4}, "settings": {"device_target": "CPU"}},
        "settings.device_target: CPU with resources.accelerators: 4",
    ),
    ({"settings": {"device_target": "GPU"}}, "settings.device_target: GPU needs resources.accelerators"),
    (
        {
            "resources": {"accelerators": 1, "accelerator_resource": "huawei.com/Ascend910"},
            "settings": {"device_target": "GPU"},
        },
        "does not match resources.accelerator_resource huawei.com/Ascend910",
    ),
    (
        {"resources": {"accelerators": 1, "accelerator_resource": "amd.com/gpu"}},
        "settings.device_target: required with resources.accelerator_resource amd.com/gpu",
    ),
    ({"labels": {"team": "a b"}}, "labels.team: 'a b' is not a valid label value"),
    ({"labels": {"app.kubernetes.io/name": "mine"}}, "labels: app.kubernetes.io/name is set by the manifest"),
    ({"annotations": {"example.com/blob": BIG_ANNOTATION}}, "bytes together, the API server's limit is 262144"),
    ({"retries": 99999999999}, "retries: Input should be less than or equal to 2147483647"),
    ({"retries": 2000000000, "workers": 2, "settings": {"batch_size": 32}}, "exceeds the API server's backoffLimit"),
    ({"mode": "predict", "predict": {"images": "s3://b/in"}}, "predict.to: required with mode: predict"),
    (
        {"mode": "predict", "predict": {"images": "s3://b/in", "to": "s3://b/p"}, "workers": 2},
        "prediction runs in one pod",
    ),
    ({"mode": "serve"}, "mode: Input should be 'train' or 'predict'"),
    ({"predict": {"top_k": 0}}, "predict.top_k: Input should be greater than or equal to 1"),
    ({"ttl_seconds_after_finished": -1}, "ttl_seconds_after_finished: Input should be greater than or equal to 0"),
    ({"tolerations": [{"key": "gpu", "opertor": "Exists"}]}, "tolerations.0.opertor: not a spec key"),
    ({"image_pull_secrets": ["Bad Name"]}, "image_pull_secrets.0: 'Bad Name' is not a valid name"),
    (
        {"network_policy": {"egress_cidrs": ["everywhere"]}},
        "network_policy.egress_cidrs.0: 'everywhere' is not a valid CIDR",
    ),
    ({"model": "https://hub.example.com:port/x.md"}, "model: 'https://hub.example.com:port/x.md' is not a valid URL"),
    ({"replicas": 3}, "replicas: not a spec key"),
    ({"notes": datetime.date(2026, 1, 1)}, "notes: not a spec key"),
    ({"queue": datetime.date(2026, 1, 1)}, "queue: Input should be a valid string"),
]
