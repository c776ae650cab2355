"""Files at rest (issue 12.7): private modes whatever the umask, keys created O_EXCL at 0600,
no planted trust anchors, `cedx keygen` never overwrites silently; and the admin commands."""

import os
import stat

import pytest

from cedx.cli import main
from cedx.platform.admin import Admin
from cedx.platform.settings import PlatformSettings, load_pki
from cedx.trust.keys import SM2PrivateKey, write_private_file


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_platform_files_are_private_even_under_umask_000(tmp_path, open_umask):
    data = tmp_path / "platform"
    Admin(PlatformSettings(data_dir=data, database_url=None))
    assert mode(data) == 0o700 and mode(data / "pki") == 0o700 and mode(data / "pki" / "trust") == 0o700
    assert mode(data / "platform.db") == 0o600
    for name in ("ca", "platform", "tsa"):
        assert mode(data / "pki" / f"{name}.key.pem") == 0o600


def test_a_trust_directory_others_can_write_is_refused(tmp_path):
    data = tmp_path / "platform"
    Admin(PlatformSettings(data_dir=data, database_url=None))
    os.chmod(data / "pki" / "trust", 0o777)  # anyone could have planted a CA here
    with pytest.raises(PermissionError, match="writable by others"):
        load_pki(data / "pki")


def test_write_private_file_is_exclusive_and_0600(tmp_path, open_umask):
    target = tmp_path / "k.pem"
    write_private_file(target, b"one")
    assert mode(target) == 0o600 and target.read_bytes() == b"one"
    with pytest.raises(FileExistsError):
        write_private_file(target, b"two")
    os.chmod(target, 0o644)
    write_private_file(target, b"two", overwrite=True)
    assert mode(target) == 0o600 and target.read_bytes() == b"two"
    link = tmp_path / "link.pem"
    link.symlink_to(tmp_path / "elsewhere.pem")
    with pytest.raises(FileExistsError):  # a planted symlink is not followed
        write_private_file(link, b"secret")
    assert not (tmp_path / "elsewhere.pem").exists()


def test_keygen_refuses_to_overwrite_without_force(tmp_path, capsys, open_umask):
    key = tmp_path / "key.pem"
    assert main(["keygen", "-o", str(key)]) == 0
    first = key.read_bytes()
    assert mode(key) == 0o600
    assert main(["keygen", "-o", str(key)]) == 2
    assert "--force" in capsys.readouterr().err and key.read_bytes() == first
    os.chmod(key, 0o644)
    assert main(["keygen", "-o", str(key), "--force"]) == 0
    assert key.read_bytes() != first and mode(key) == 0o600
    SM2PrivateKey.from_bytes(key.read_bytes())


def test_admin_commands(tmp_path, capsys):
    from cedx.trust import x509 as tx

    d = ["--dir", str(tmp_path / "p")]
    code = "91320500MA1X2P3Q4R"
    assert main(["platform", "init", *d]) == 0
    assert main(["platform", "add-entity", code, *d]) == 0
    assert main(["platform", "add-client", code, "--client-id", "erp", *d]) == 0
    capsys.readouterr()
    assert main(["platform", "issue-token", "erp", "--lifetime", "5", *d]) == 0
    assert len(capsys.readouterr().out.strip()) >= 32
    assert main(["platform", "disable-client", "erp", *d]) == 0
    assert main(["platform", "issue-token", "erp", *d]) == 2  # a disabled client gets no token
    assert main(["platform", "enable-client", "erp", *d]) == 0
    assert main(["platform", "disable-client", "nobody", *d]) == 2
    key = SM2PrivateKey.generate()
    (tmp_path / "req.pem").write_bytes(tx.create_csr(key, {"common_name": code}))
    assert main(["platform", "issue-certificate", code, "--csr", str(tmp_path / "req.pem"), "-o",
                 str(tmp_path / "c.pem"), *d]) == 0
    assert main(["platform", "revoke-certificate", str(tmp_path / "c.pem"), *d]) == 0
    assert key.public_key().fingerprint() in capsys.readouterr().out
    assert main(["platform", "revoke-certificate", "0" * 64, *d]) == 2
    admin = Admin(PlatformSettings(data_dir=tmp_path / "p", database_url=None))
    assert admin.store.certificate(key.public_key().fingerprint()).revoked_at is not None
