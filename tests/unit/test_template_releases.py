"""Template releases (issue 17): every version cfadmin shipped is kept, a stored version can be
rendered again (a rollout's target, a rollback's previous version), and the deploy's render step
renders the version its operation names."""

from __future__ import annotations

import pytest

from stacks.choices import OperationKind
from stacks.compose import TemplateError, load_manifest, manifest_for, render_sample
from stacks.compose.manifest import release_version
from stacks.models import Operation
from stacks.models.template_release import (
    TemplateRelease,
    record_current_releases,
    record_release,
)
from stacks.provisioning import OperationRunner, Remote, StepFailed
from tests.fakes import FakeCoolify, FakePocketBase

TEMPLATE = "openclaw-agent"
SECRETS = {"ANTHROPIC_API_KEY": "sk-unit-test-not-a-real-key"}
LABEL = "CF_TEST_RELEASE=second"  # an env entry the on-disk version does not have


def second_release() -> TemplateRelease:
    """The on-disk template with an environment entry added to its compose: another version."""
    current = TemplateRelease.objects.get(
        template_name=TEMPLATE, version=load_manifest(TEMPLATE).version
    )
    home = '      - "HOME=/home/node"\n'
    compose = current.compose_text.replace(home, f'{home}      - "{LABEL}"\n', 1)
    assert compose != current.compose_text, "the compose template has no HOME entry"
    return TemplateRelease.store(TEMPLATE, current.manifest_text, compose)


def runner_for(stack, remote, parameters) -> OperationRunner:
    operation = Operation.objects.create(
        stack=stack, kind=OperationKind.DEPLOY, requested_by_repr="test", parameters=parameters
    )
    assert Operation.objects.claim(operation.pk)
    operation.refresh_from_db()
    return OperationRunner(
        operation,
        remote,
        poll_interval=0,
        health_timeout=5,
        delete_timeout=5,
        sleep=lambda _seconds: remote.coolify.tick(),
    )


@pytest.fixture
def remote() -> Remote:
    return Remote(coolify=FakeCoolify(), pocketbase=FakePocketBase())


@pytest.mark.django_db
def test_migrate_keeps_the_on_disk_version_of_every_template():
    from stacks.catalog import template_names

    for name in template_names():
        release = TemplateRelease.objects.get(
            template_name=name, version=load_manifest(name).version
        )
        assert manifest_for(name, release.version) == load_manifest(name)


@pytest.mark.django_db
def test_recording_again_stores_nothing_new():
    before = TemplateRelease.objects.count()
    assert record_current_releases() == 0
    release, created = record_release(TEMPLATE)
    assert not created and release.version == load_manifest(TEMPLATE).version
    assert TemplateRelease.objects.count() == before


@pytest.mark.django_db
def test_a_stored_version_is_parsed_and_renders_its_own_compose():
    release = second_release()
    assert release.version == release_version(release.manifest_text, release.compose_text)
    assert release.version != load_manifest(TEMPLATE).version

    manifest = manifest_for(TEMPLATE, release.version)

    assert manifest.version == release.version
    assert LABEL in render_sample(manifest).text
    assert LABEL not in render_sample(load_manifest(TEMPLATE)).text


@pytest.mark.django_db
def test_an_unknown_version_is_refused_by_name():
    with pytest.raises(TemplateError, match="version 0123456789ab is unknown"):
        manifest_for(TEMPLATE, "0123456789ab")


@pytest.mark.django_db
def test_a_release_that_is_not_a_template_is_refused():
    with pytest.raises(TemplateError):
        TemplateRelease.store(TEMPLATE, "name: something-else\n", "services: {}\n")
    assert not TemplateRelease.objects.filter(compose_text="services: {}\n").exists()


@pytest.mark.django_db
def test_the_deploy_renders_the_version_its_operation_names(make_stack, remote):
    release = second_release()
    stack = make_stack(secrets=SECRETS)

    runner_for(stack, remote, {"template_version": release.version}).run()

    stack.refresh_from_db()
    assert stack.template_version == release.version
    [service] = remote.coolify.services.values()
    assert LABEL in service["compose"]


@pytest.mark.django_db
def test_the_deploy_renders_the_on_disk_version_without_a_parameter(make_stack, remote):
    stack = make_stack(secrets=SECRETS)

    runner_for(stack, remote, {}).run()

    stack.refresh_from_db()
    assert stack.template_version == load_manifest(TEMPLATE).version
    [service] = remote.coolify.services.values()
    assert LABEL not in service["compose"]


@pytest.mark.django_db
def test_the_deploy_of_an_unknown_version_fails_at_render_naming_it(make_stack, remote):
    stack = make_stack(secrets=SECRETS)
    runner = runner_for(stack, remote, {"template_version": "0123456789ab"})

    with pytest.raises(StepFailed, match="0123456789ab"):
        runner.render()
    assert remote.coolify.services == {}
