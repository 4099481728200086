#include "training_dock.h"

#include <QScrollArea>

#include "ltlab/training.h"

#include <QCheckBox>
#include <QComboBox>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QSettings>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardPaths>
#include <QVBoxLayout>

#include <csignal>

namespace ltlab::ui {

namespace {

struct Preset {
    const char* title;
    const char* recipe; // nullptr: no training (custom settings, or the cone lab)
    int epochs, stage2_epochs;
    double weight_decay, stage2_weight_decay;
    int cone_lab_preset = -1; // >= 0: open the Cone lab tab with ltlab::coneLabPreset(index)
};

// Each shows one mechanism on Fashion-MNIST-LT with the small CNN in under two
// minutes on 2 cores (about 3 s of training and 6 s of evaluation an epoch).
const Preset kPresets[] = {
    {"Custom settings", nullptr, 0, 0, 0, 0},
    {"Weight decay raises FDR (ce-wd)", "ce-wd", 8, 0, 5e-3, 0.1},
    // Stage-2 weight decay 5e-3: with the papers' class-balanced loss (mean over
    // the batch), the recipe's 0.1 leaves stage 2 little to do on Fashion-MNIST-LT
    // (48% against 69% balanced accuracy, docs/experiments.md).
    {"WB stage 2 = implicit logit adjustment (wb)", "wb", 6, 5, 5e-3, 5e-3},
    {"One stage: ETF + logit adjustment (wd-fr-etf)", "wd-fr-etf", 8, 0, 5e-3, 0.1},
    // No training: five random layers on noise already put the features in a
    // cone (the paper's multi-layer study, gamma mean 0.1 with std 0.05).
    {"The cone effect without training (Cone lab tab)", nullptr, 0, 0, 0, 0, 2},
};

} // namespace

TrainingDock::TrainingDock(QWidget* parent) : QDockWidget(tr("Training"), parent) {
    setObjectName("training_dock");
    auto* body = new QWidget(this);
    preset_ = new QComboBox(body);
    preset_->setObjectName("preset");
    for (const Preset& p : kPresets) preset_->addItem(tr(p.title));
    dataset_ = new QComboBox(body);
    dataset_->addItems({"fashion-mnist-lt", "gaussian-lt", "cifar10-lt", "cifar100-lt", "idx-lt"});
    data_dir_ = new QLineEdit(body);
    data_dir_->setPlaceholderText(tr("folder of CIFAR binaries / IDX files"));
    imbalance_ = new QDoubleSpinBox(body);
    imbalance_->setRange(1, 1000);
    imbalance_->setValue(100);
    model_ = new QComboBox(body);
    model_->addItems({"auto", "cnn", "mlp", "resnet32", "resnet34"});
    recipe_ = new QComboBox(body);
    for (const RecipeInfo& r : recipes()) // core's list; la adjusts a finished run, it does not train
        if (r.name != "la") {
            recipe_->addItem(QString::fromStdString(r.name));
            recipe_->setItemData(recipe_->count() - 1, QString::fromStdString(r.summary), Qt::ToolTipRole);
        }
    epochs_ = new QSpinBox(body);
    epochs_->setRange(1, 10000);
    epochs_->setValue(8);
    stage2_epochs_ = new QSpinBox(body);
    stage2_epochs_->setRange(0, 10000);
    stage2_epochs_->setValue(5);
    lr_ = new QDoubleSpinBox(body);
    lr_->setDecimals(4);
    lr_->setRange(1e-4, 10);
    lr_->setValue(0.01);
    stage2_weight_decay_ = new QDoubleSpinBox(body);
    stage2_weight_decay_->setDecimals(4);
    stage2_weight_decay_->setRange(0, 1);
    stage2_weight_decay_->setValue(0.1);
    stage2_weight_decay_->setToolTip(tr("Weight decay of weight balancing's stage 2 (the classifier's retraining)"));
    weight_decay_ = new QDoubleSpinBox(body);
    weight_decay_->setDecimals(4);
    weight_decay_->setRange(0, 1);
    weight_decay_->setValue(5e-3);
    seed_ = new QSpinBox(body);
    seed_->setRange(0, 1 << 30);
    device_ = new QComboBox(body);
    device_->addItems({"auto", "cpu", "cuda"});
    cb_beta_ = new QDoubleSpinBox(body);
    cb_beta_->setDecimals(5);
    cb_beta_->setRange(0, 1);
    cb_beta_->setSingleStep(0.0001);
    cb_beta_->setValue(0.9999);
    maxnorm_ = new QCheckBox(tr("MaxNorm"), body);
    maxnorm_->setChecked(true);
    maxnorm_factor_ = new QDoubleSpinBox(body);
    maxnorm_factor_->setDecimals(3);
    maxnorm_factor_->setRange(0, 10);
    maxnorm_factor_->setSingleStep(0.05);
    maxnorm_factor_->setValue(0.1);
    maxnorm_per_epoch_ = new QCheckBox(tr("once per epoch"), body);
    tau_ = new QDoubleSpinBox(body);
    tau_->setDecimals(2);
    tau_->setRange(-0.01, 5); // -0.01: chosen on the validation split
    tau_->setSingleStep(0.05);
    tau_->setSpecialValueText(tr("auto (on val)"));
    tau_->setValue(-0.01);
    tau_->setObjectName("tau");
    la_mode_ = new QComboBox(body);
    la_mode_->setObjectName("la_mode");
    la_mode_->addItems({"multiplicative", "additive"});
    snapshot_every_ = new QSpinBox(body);
    snapshot_every_->setRange(1, 10000);
    out_ = new QLineEdit(body);
    out_->setPlaceholderText(tr("a new file under %1").arg(
        QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/runs"));
    auto* browse = new QPushButton(tr("…"), body);
    browse->setToolTip(tr("Choose the run file"));
    browse->setMaximumWidth(36);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Run file"), defaultOutputPath(),
                                                          tr("Run files (*.h5)"));
        if (!path.isEmpty()) out_->setText(path.endsWith(".h5") ? path : path + ".h5");
    });
    // Each field says what its config key means (core's one list, as ltlab train --help).
    const std::pair<QWidget*, const char*> keyed[] = {
        {dataset_, "dataset"}, {data_dir_, "data_dir"}, {imbalance_, "imbalance"}, {model_, "model"},
        {epochs_, "epochs"}, {stage2_epochs_, "stage2_epochs"}, {lr_, "lr"}, {weight_decay_, "weight_decay"},
        {stage2_weight_decay_, "stage2_weight_decay"}, {cb_beta_, "cb_beta"}, {maxnorm_, "maxnorm"},
        {maxnorm_factor_, "maxnorm_factor"}, {maxnorm_per_epoch_, "maxnorm_per_epoch"}, {tau_, "tau"},
        {la_mode_, "la_mode"}, {seed_, "seed"}, {device_, "device"}, {snapshot_every_, "snapshot_every"}};
    for (const auto& [widget, key] : keyed)
        widget->setToolTip(QString::fromStdString(configKeyHelp(key)) + tr(" (--%1)").arg(QString(key).replace('_', '-')));
    // Long entries (the presets' titles) must not widen the dock past a laptop's side panel.
    for (QComboBox* box : {preset_, dataset_, model_, recipe_, device_, la_mode_}) {
        box->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        box->setMinimumContentsLength(10);
    }
        preset_->setToolTip(tr("Classroom presets: each shows one mechanism of the paper on Fashion-MNIST-LT in minutes"));
    out_->setToolTip(tr("The run file training writes; empty: a new file named after the recipe and the time"));
    start_ = new QPushButton(tr("Start"), body);
    start_->setToolTip(tr("Train a new run with these settings into the run file above (a separate ltlab process; the views follow each epoch)"));
    pause_ = new QPushButton(tr("Pause"), body);
    pause_->setToolTip(tr("Suspend the training process where it is, and continue it later (Resume)"));
    stop_ = new QPushButton(tr("Stop"), body);
    stop_->setToolTip(tr("End the training: the epochs finished so far stay in the run file, which --resume can continue"));
    pause_->setEnabled(false);
    stop_->setEnabled(false);
    progress_ = new QProgressBar(body);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    status_ = new QLabel(tr("Idle"), body);
    status_->setWordWrap(true);

    auto* form = new QFormLayout;
    auto section = [&](const QString& title) {
        auto* label = new QLabel("<b>" + title + "</b>", body);
        form->addRow(label);
    };
    form->addRow(tr("Preset"), preset_);
    form->addRow(tr("Recipe"), recipe_);
    section(tr("Data and model"));
    form->addRow(tr("Dataset"), dataset_);
    form->addRow(tr("Data folder"), data_dir_);
    form->addRow(tr("Imbalance factor"), imbalance_);
    form->addRow(tr("Model"), model_);
    section(tr("Stage 1"));
    form->addRow(tr("Epochs"), epochs_);
    form->addRow(tr("Learning rate"), lr_);
    form->addRow(tr("Weight decay"), weight_decay_);
    section(tr("Stage 2 (wb)"));
    form->addRow(tr("Epochs"), stage2_epochs_);
    form->addRow(tr("Weight decay"), stage2_weight_decay_);
    form->addRow(tr("CB beta"), cb_beta_);
    form->addRow(maxnorm_, maxnorm_factor_);
    form->addRow(QString(), maxnorm_per_epoch_);
    section(tr("Logit adjustment (wd-fr-etf, la)"));
    form->addRow(tr("tau"), tau_);
    form->addRow(tr("Mode"), la_mode_);
    section(tr("Run"));
    auto* out_row = new QHBoxLayout;
    out_row->addWidget(out_, 1);
    out_row->addWidget(browse);
    form->addRow(tr("Run file"), out_row);
    form->addRow(tr("Seed"), seed_);
    form->addRow(tr("Snapshot every"), snapshot_every_);
    form->addRow(tr("Device"), device_);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(start_);
    buttons->addWidget(pause_);
    buttons->addWidget(stop_);
    auto* layout = new QVBoxLayout(body);
    layout->addWidget(buildOpenRunBox(body));
    layout->addLayout(form);
    layout->addLayout(buttons);
    layout->addWidget(progress_);
    layout->addWidget(status_);
    layout->addStretch(1);
    // Scrolls rather than forcing its height and width on a small screen.
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(body);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setMinimumWidth(200);
    setWidget(scroll);

    connect(preset_, &QComboBox::currentIndexChanged, this, &TrainingDock::applyPreset);
    connect(recipe_, &QComboBox::currentIndexChanged, this, &TrainingDock::updateEnabled);
    connect(maxnorm_, &QCheckBox::toggled, this, &TrainingDock::updateEnabled);
    updateEnabled();
    connect(start_, &QPushButton::clicked, this, &TrainingDock::start);
    connect(pause_, &QPushButton::clicked, this, &TrainingDock::togglePause);
    connect(stop_, &QPushButton::clicked, this, &TrainingDock::stop);
}

TrainingDock::~TrainingDock() {
    if (running()) { // the run keeps its finished epochs
        stop();
        process_->waitForFinished(10000);
    }
}

void TrainingDock::applyPreset(int index) {
    if (index <= 0 || index >= static_cast<int>(std::size(kPresets))) return;
    const Preset& p = kPresets[index];
    if (p.cone_lab_preset >= 0) {
        emit coneLabRequested(p.cone_lab_preset);
        return;
    }
    dataset_->setCurrentText("fashion-mnist-lt");
    imbalance_->setValue(100);
    model_->setCurrentText("cnn");
    recipe_->setCurrentText(p.recipe);
    epochs_->setValue(p.epochs);
    stage2_epochs_->setValue(p.stage2_epochs);
    lr_->setValue(0.01);
    weight_decay_->setValue(p.weight_decay);
    stage2_weight_decay_->setValue(p.stage2_weight_decay);
}

void TrainingDock::setDataset(const QString& dataset, const QString& model) {
    dataset_->setCurrentText(dataset);
    model_->setCurrentText(model);
}

void TrainingDock::setRecipe(const QString& recipe, int epochs) {
    recipe_->setCurrentText(recipe);
    epochs_->setValue(epochs);
}

bool TrainingDock::running() const { return process_ && process_->state() != QProcess::NotRunning; }

QStringList TrainingDock::trainArguments(const QString& out_path) const {
    QStringList args{"train",  "--recipe", recipe_->currentText(), "--dataset", dataset_->currentText(),
                     "--imbalance", QString::number(imbalance_->value()), "--model", model_->currentText(),
                     "--epochs", QString::number(epochs_->value()), "--lr", QString::number(lr_->value()),
                     "--seed", QString::number(seed_->value()), "--device", device_->currentText(),
                     "--out", out_path, "--overwrite", "--progress-json"};
    if (recipe_->currentText() != "ce") args << "--weight-decay" << QString::number(weight_decay_->value());
    const QString recipe = recipe_->currentText();
    if (recipe == "wb")
        args << "--stage2-epochs" << QString::number(stage2_epochs_->value()) << "--stage2-weight-decay"
             << QString::number(stage2_weight_decay_->value()) << "--cb-beta" << QString::number(cb_beta_->value(), 'g', 8)
             << "--maxnorm" << (maxnorm_->isChecked() ? "true" : "false") << "--maxnorm-factor"
             << QString::number(maxnorm_factor_->value()) << "--maxnorm-per-epoch"
             << (maxnorm_per_epoch_->isChecked() ? "true" : "false");
    if (recipe == "wd-fr-etf") {
        args << "--la-mode" << la_mode_->currentText();
        if (tau_->value() >= 0) args << "--tau" << QString::number(tau_->value());
    }
    if (snapshot_every_->value() != 1) args << "--snapshot-every" << QString::number(snapshot_every_->value());
    if (!data_dir_->text().isEmpty()) args << "--data-dir" << data_dir_->text();
    return args;
}

QString TrainingDock::defaultOutputPath() const {
    if (!out_->text().trimmed().isEmpty()) return out_->text().trimmed();
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/runs";
    return dir + "/" + recipe_->currentText() + "-" + QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss") + ".h5";
}

void TrainingDock::setOutputPath(const QString& path) { out_->setText(path); }

void TrainingDock::updateEnabled() {
    const QString recipe = recipe_->currentText();
    recipe_->setToolTip(recipe_->currentData(Qt::ToolTipRole).toString()); // what the chosen recipe does
    for (QWidget* w : std::initializer_list<QWidget*>{stage2_epochs_, stage2_weight_decay_, cb_beta_, maxnorm_})
        w->setEnabled(recipe == "wb");
    maxnorm_factor_->setEnabled(recipe == "wb" && maxnorm_->isChecked());
    maxnorm_per_epoch_->setEnabled(recipe == "wb" && maxnorm_->isChecked());
    // (and the la of the open run)
    tau_->setEnabled(recipe == "wd-fr-etf" || !open_run_.isEmpty());
    la_mode_->setEnabled(recipe == "wd-fr-etf" || !open_run_.isEmpty());
    weight_decay_->setEnabled(recipe != "ce");
}

void TrainingDock::start() {
    if (running()) return;
    const QString out = defaultOutputPath();
    QDir().mkpath(QFileInfo(out).absolutePath());
    startProcess(trainArguments(out), out, tr("Starting…"));
}

void TrainingDock::startProcess(const QStringList& args, const QString& out_path, const QString& what) {
    out_path_ = out_path;
    delete process_;
    process_ = new QProcess(this);
    process_->setProcessChannelMode(QProcess::SeparateChannels);
    connect(process_, &QProcess::readyReadStandardOutput, this, &TrainingDock::readOutput);
    connect(process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        readOutput();
        const QString err = QString::fromLocal8Bit(process_->readAllStandardError()).trimmed();
        const QString message = status != QProcess::NormalExit ? tr("Training crashed.")
                                : code == 0                    ? tr("Finished: %1").arg(out_path_)
                                : code == 130                  ? tr("Stopped; the finished epochs are in %1").arg(out_path_)
                                                               : tr("Training failed: %1").arg(err.section('\n', -1));
        status_->setText(message);
        start_->setEnabled(true);
        pause_->setEnabled(false);
        stop_->setEnabled(false);
        paused_ = false;
        pause_->setText(tr("Pause"));
        updateOpenRunBox();
        emit runFinished(out_path_, status == QProcess::NormalExit ? code : -1, message);
    });
    clock_.start();
    progress_->setValue(0);
    status_->setText(what);
    start_->setEnabled(false);
    pause_->setEnabled(true);
    stop_->setEnabled(true);
    updateOpenRunBox();
    process_->start(executable_.isEmpty() ? QCoreApplication::applicationFilePath() : executable_, args);
}

// ---- the open run: la and resume ---------------------------------------------------------

QGroupBox* TrainingDock::buildOpenRunBox(QWidget* parent) {
    open_box_ = new QGroupBox(tr("The open run"), parent);
    open_label_ = new QLabel(tr("No run open"), open_box_);
    open_label_->setWordWrap(true);
    la_ = new QPushButton(tr("Logit adjustment (la)"), open_box_);
    la_->setObjectName("la_open_run");
    la_->setToolTip(tr("Post-hoc logit adjustment of the open run's last snapshot that is not itself adjusted, with the "
                       "tau and mode of \"Logit adjustment\" below (auto: the tau best on val); writes RUN-la.h5 "
                       "beside the run and opens it (ltlab train --recipe la --from RUN)"));
    resume_epochs_ = new QSpinBox(open_box_);
    resume_epochs_->setObjectName("resume_epochs");
    resume_epochs_->setRange(1, 10000);
    resume_epochs_->setToolTip(tr("Total (stage-1) epochs after resuming: the run's own to finish it, more to extend it "
                                  "(the cosine schedule follows the new total from the next epoch on; --epochs)"));
    resume_stage2_epochs_ = new QSpinBox(open_box_);
    resume_stage2_epochs_->setObjectName("resume_stage2_epochs");
    resume_stage2_epochs_->setRange(0, 10000);
    resume_stage2_epochs_->setToolTip(tr("Total stage-2 epochs of a wb run after resuming (--stage2-epochs)"));
    resume_ = new QPushButton(tr("Resume / extend"), open_box_);
    resume_->setObjectName("resume_open_run");
    auto* epochs = new QHBoxLayout;
    resume_stage2_label_ = new QLabel(tr("+ stage 2"), open_box_);
    epochs->addWidget(new QLabel(tr("Epochs"), open_box_));
    epochs->addWidget(resume_epochs_);
    epochs->addWidget(resume_stage2_label_);
    epochs->addWidget(resume_stage2_epochs_);
    epochs->addStretch(1);
    auto* layout = new QVBoxLayout(open_box_);
    layout->addWidget(open_label_);
    layout->addWidget(la_);
    layout->addLayout(epochs);
    layout->addWidget(resume_);
    connect(la_, &QPushButton::clicked, this, &TrainingDock::adjustOpenRun);
    connect(resume_, &QPushButton::clicked, this, &TrainingDock::resumeOpenRun);
    updateOpenRunBox();
    return open_box_;
}

void TrainingDock::setOpenRun(const QString& path, const QString& config_json) {
    const bool same = path == open_run_;
    open_run_ = path;
    open_recipe_.clear();
    int epochs = 0, stage2_epochs = 0;
    if (!config_json.isEmpty()) {
        try { // the run's own record, read by core's one parser
            const TrainConfig config = TrainConfig::fromJson(config_json.toStdString(), TrainConfig());
            if (config.recipe != "la") open_recipe_ = QString::fromStdString(config.recipe);
            epochs = static_cast<int>(config.epochs);
            stage2_epochs = static_cast<int>(config.stage2_epochs);
        } catch (const std::exception&) {
            // not a training configuration: nothing to resume
        }
    }
    // The run's totals are the least it can be resumed to; a new run starts at them.
    resume_epochs_->setMinimum(std::max(1, epochs));
    resume_stage2_epochs_->setMinimum(open_recipe_ == "wb" ? stage2_epochs : 0);
    if (!same) {
        resume_epochs_->setValue(epochs);
        resume_stage2_epochs_->setValue(stage2_epochs);
    }
    updateOpenRunBox();
    updateEnabled();
}

void TrainingDock::updateOpenRunBox() {
    const bool open = !open_run_.isEmpty(), idle = !running();
    open_label_->setText(open ? QFileInfo(open_run_).fileName() + (open_recipe_.isEmpty() ? QString() : " (" + open_recipe_ + ")")
                              : tr("No run open: open one in the Runs tree"));
    open_label_->setToolTip(open_run_);
    la_->setEnabled(open && idle);
    resume_->setEnabled(open && idle && !open_recipe_.isEmpty());
    resume_epochs_->setEnabled(open && !open_recipe_.isEmpty());
    resume_stage2_epochs_->setVisible(open_recipe_ == "wb");
    resume_stage2_label_->setVisible(open_recipe_ == "wb");
    resume_->setToolTip(open && open_recipe_.isEmpty()
                            ? tr("This run was not written by ltlab train (no training configuration): nothing to resume")
                            : tr("Continue the open run after its last finished epoch, to the epochs set here, in the "
                                 "same file (ltlab train --resume RUN --epochs N; needs RUN.h5.ckpt, which ltlab train "
                                 "keeps beside the run)"));
}

QString TrainingDock::laOutputPath(const QString& run) {
    const QFileInfo info(run);
    return info.dir().filePath(info.completeBaseName() + "-la.h5");
}

QStringList TrainingDock::laArguments(const QString& run, const QString& out_path) const {
    QStringList args{"train", "--recipe", "la", "--from", run, "--out", out_path, "--overwrite",
                     "--la-mode", la_mode_->currentText(), "--progress-json"};
    if (tau_->value() >= 0) args << "--tau" << QString::number(tau_->value());
    return args;
}

QStringList TrainingDock::resumeArguments(const QString& run) const {
    QStringList args{"train", "--resume", run, "--epochs", QString::number(resume_epochs_->value())};
    if (open_recipe_ == "wb") args << "--stage2-epochs" << QString::number(resume_stage2_epochs_->value());
    return args << "--progress-json";
}

void TrainingDock::adjustOpenRun() {
    if (running() || open_run_.isEmpty()) return;
    const QString out = laOutputPath(open_run_);
    startProcess(laArguments(open_run_, out), out, tr("Adjusting the logits of %1…").arg(QFileInfo(open_run_).fileName()));
}

void TrainingDock::resumeOpenRun() {
    if (running() || open_run_.isEmpty() || open_recipe_.isEmpty()) return;
    startProcess(resumeArguments(open_run_), open_run_, tr("Resuming %1…").arg(QFileInfo(open_run_).fileName()));
}

qint64 TrainingDock::processId() const { return running() ? process_->processId() : 0; }

void TrainingDock::togglePause() {
    if (!running()) return;
    paused_ = !paused_;
    ::kill(static_cast<pid_t>(process_->processId()), paused_ ? SIGSTOP : SIGCONT);
    pause_->setText(paused_ ? tr("Resume") : tr("Pause"));
    status_->setText(paused_ ? tr("Paused") : tr("Training…"));
}

void TrainingDock::stop() {
    if (!running()) return;
    if (paused_) ::kill(static_cast<pid_t>(process_->processId()), SIGCONT);
    ::kill(static_cast<pid_t>(process_->processId()), SIGINT); // ends after the current batch
    status_->setText(tr("Stopping after the current batch…"));
}

void TrainingDock::readOutput() {
    while (process_ && process_->canReadLine()) {
        const QJsonObject event = QJsonDocument::fromJson(process_->readLine()).object();
        const QString kind = event.value("event").toString();
        if (kind == "progress") {
            const double f = event.value("fraction").toDouble();
            progress_->setValue(static_cast<int>(f * 1000));
            const double elapsed = clock_.elapsed() / 1000.0;
            const QString eta = f > 0.01 ? tr(", about %1 s left").arg(static_cast<int>(elapsed * (1 - f) / f)) : QString();
            status_->setText(event.value("what").toString() + eta);
        } else if (kind == "epoch") {
            emit epochFinished(out_path_, event.value("epoch").toInt(), event.value("epochs_total").toInt());
        } else if (kind == "log") {
            status_->setText(event.value("message").toString());
        }
    }
}

void TrainingDock::saveSettings() const {
    QSettings settings;
    settings.beginGroup("training");
    settings.setValue("dataset", dataset_->currentText());
    settings.setValue("data_dir", data_dir_->text());
    settings.setValue("imbalance", imbalance_->value());
    settings.setValue("model", model_->currentText());
    settings.setValue("recipe", recipe_->currentText());
    settings.setValue("epochs", epochs_->value());
    settings.setValue("stage2_epochs", stage2_epochs_->value());
    settings.setValue("lr", lr_->value());
    settings.setValue("weight_decay", weight_decay_->value());
    settings.setValue("stage2_weight_decay", stage2_weight_decay_->value());
    settings.setValue("seed", seed_->value());
    settings.setValue("device", device_->currentText());
    settings.setValue("cb_beta", cb_beta_->value());
    settings.setValue("maxnorm", maxnorm_->isChecked());
    settings.setValue("maxnorm_factor", maxnorm_factor_->value());
    settings.setValue("maxnorm_per_epoch", maxnorm_per_epoch_->isChecked());
    settings.setValue("tau", tau_->value());
    settings.setValue("la_mode", la_mode_->currentText());
    settings.setValue("snapshot_every", snapshot_every_->value());
}

void TrainingDock::restoreSettings() {
    QSettings settings;
    settings.beginGroup("training");
    if (!settings.contains("recipe")) return;
    auto choose = [&settings](QComboBox* box, const char* key) {
        const int index = box->findText(settings.value(key).toString());
        if (index >= 0) box->setCurrentIndex(index);
    };
    choose(dataset_, "dataset");
    data_dir_->setText(settings.value("data_dir").toString());
    imbalance_->setValue(settings.value("imbalance", imbalance_->value()).toDouble());
    choose(model_, "model");
    choose(recipe_, "recipe");
    epochs_->setValue(settings.value("epochs", epochs_->value()).toInt());
    stage2_epochs_->setValue(settings.value("stage2_epochs", stage2_epochs_->value()).toInt());
    lr_->setValue(settings.value("lr", lr_->value()).toDouble());
    weight_decay_->setValue(settings.value("weight_decay", weight_decay_->value()).toDouble());
    stage2_weight_decay_->setValue(settings.value("stage2_weight_decay", stage2_weight_decay_->value()).toDouble());
    seed_->setValue(settings.value("seed", seed_->value()).toInt());
    choose(device_, "device");
    cb_beta_->setValue(settings.value("cb_beta", cb_beta_->value()).toDouble());
    maxnorm_->setChecked(settings.value("maxnorm", maxnorm_->isChecked()).toBool());
    maxnorm_factor_->setValue(settings.value("maxnorm_factor", maxnorm_factor_->value()).toDouble());
    maxnorm_per_epoch_->setChecked(settings.value("maxnorm_per_epoch", maxnorm_per_epoch_->isChecked()).toBool());
    tau_->setValue(settings.value("tau", tau_->value()).toDouble());
    choose(la_mode_, "la_mode");
    snapshot_every_->setValue(settings.value("snapshot_every", snapshot_every_->value()).toInt());
    updateEnabled();
}

} // namespace ltlab::ui
