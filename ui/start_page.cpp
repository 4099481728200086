#include "start_page.h"

#include <QEvent>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPainter>
#include <QPainterPath>
#include <QPushButton>
#include <QScrollArea>
#include <QToolButton>
#include <QVBoxLayout>

#include <cmath>

namespace ltlab::ui {

namespace {

// Okabe-Ito: head (many-shot), medium, tail (few-shot), and the simplex.
const QColor kHead(0x00, 0x72, 0xB2), kMedium(0xE6, 0x9F, 0x00), kTail(0xD5, 0x5E, 0x00), kSimplex(0x99, 0x99, 0x99);

// The picture: class means squeezed into a cone next to the simplex they
// should spread to, and the classifier's weight norms falling from head to
// tail, with the level weight balancing brings them to. Drawn, in the
// palette's text colour, at any font size.
class StoryPicture : public QWidget {
public:
    explicit StoryPicture(QWidget* parent) : QWidget(parent) {
        setAccessibleName(tr("Class means in a cone against a simplex, and weight norms falling from head to tail"));
        setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Preferred);
    }
    QSize sizeHint() const override {
        const int em = fontMetrics().height();
        return {em * 24, em * 11};
    }
    QSize minimumSizeHint() const override {
        const int em = fontMetrics().height();
        return {em * 16, em * 8};
    }

protected:
    void paintEvent(QPaintEvent*) override {
        QPainter p(this);
        p.setRenderHint(QPainter::Antialiasing);
        const QFontMetrics fm = fontMetrics();
        const int em = fm.height();
        const QColor text = palette().color(QPalette::WindowText);
        const QRectF all = QRectF(rect()).adjusted(em * 0.3, em * 0.3, -em * 0.3, -em * 0.3);
        const double gap = em;
        const QRectF left(all.left(), all.top(), (all.width() - gap) / 2, all.height());
        const QRectF right(left.right() + gap, all.top(), left.width(), all.height());

        // Panel 1: five class means in a narrow cone; the simplex's directions dashed.
        p.setPen(text);
        p.drawText(QRectF(left.left(), left.top(), left.width(), em), Qt::AlignHCenter | Qt::AlignTop, tr("class means"));
        const QRectF area1 = left.adjusted(0, em * 1.2, 0, -em * 1.2);
        const QPointF o = area1.center();
        const double r = std::min(area1.width(), area1.height()) / 2 - 2;
        const double pi = std::acos(-1.0);
        QPen dashed(kSimplex, 1.5, Qt::DashLine);
        const QColor colours[5] = {kHead, kHead, kMedium, kMedium, kTail};
        for (int i = 0; i < 5; ++i) { // the simplex ETF: equal angles all round
            const double a = pi / 2 + 2 * pi * i / 5;
            p.setPen(dashed);
            p.drawLine(o, o + QPointF(r * std::cos(a), -r * std::sin(a)));
        }
        p.setBrush(Qt::NoBrush);
        // The cone: every mean within about 25 degrees of one direction.
        const double axis = pi / 5, half = pi * 25 / 180;
        QPainterPath cone;
        cone.moveTo(o);
        cone.arcTo(QRectF(o.x() - r, o.y() - r, 2 * r, 2 * r), (axis - half) * 180 / pi, 2 * half * 180 / pi);
        cone.closeSubpath();
        QColor fill = kHead;
        fill.setAlphaF(0.12);
        p.fillPath(cone, fill);
        for (int i = 0; i < 5; ++i) {
            const double a = axis - half * 0.85 + 2 * half * 0.85 * i / 4;
            const double len = r * (0.95 - 0.08 * i); // tail means shorter
            const QPointF tip = o + QPointF(len * std::cos(a), -len * std::sin(a));
            p.setPen(QPen(colours[i], 2.2));
            p.drawLine(o, tip);
            p.setBrush(colours[i]);
            p.drawEllipse(tip, 3.5, 3.5);
            p.setBrush(Qt::NoBrush);
        }
        p.setPen(text);
        p.drawText(QRectF(left.left(), left.bottom() - em, left.width(), em), Qt::AlignHCenter | Qt::AlignBottom,
                   tr("a cone, not a simplex"));

        // Panel 2: weight norms head -> tail; the dashed line is after weight balancing.
        p.drawText(QRectF(right.left(), right.top(), right.width(), em), Qt::AlignHCenter | Qt::AlignTop, tr("weight norms"));
        const QRectF area2 = right.adjusted(em * 0.2, em * 1.3, -em * 0.2, -em * 1.2);
        constexpr int kBars = 10;
        const double step = area2.width() / kBars;
        for (int i = 0; i < kBars; ++i) {
            const double h = area2.height() * (1.0 - 0.62 * i / (kBars - 1));
            const QColor c = i < 3 ? kHead : i < 7 ? kMedium : kTail;
            p.fillRect(QRectF(area2.left() + i * step + step * 0.12, area2.bottom() - h, step * 0.76, h), c);
        }
        p.setPen(QPen(text, 1.5, Qt::DashLine));
        const double level = area2.bottom() - area2.height() * 0.72;
        p.drawLine(QPointF(area2.left(), level), QPointF(area2.right(), level));
        p.setPen(text);
        p.drawText(QRectF(right.left(), right.bottom() - em, right.width(), em), Qt::AlignLeft | Qt::AlignBottom, tr("head"));
        p.drawText(QRectF(right.left(), right.bottom() - em, right.width(), em), Qt::AlignRight | Qt::AlignBottom, tr("tail"));
    }
};

} // namespace

StartPage::StartPage(QWidget* parent) : QWidget(parent) {
    setObjectName("start_page");
    auto* content = new QWidget;
    content->setMaximumWidth(1100);

    auto* title = new QLabel(tr("ltlab — why the rare classes lose"), content);
    title->setObjectName("start_title");
    title->setWordWrap(true);
    title->setTextFormat(Qt::RichText);
    title->setText(QStringLiteral("<h1>%1</h1>").arg(tr("ltlab — why the rare classes lose")));

    auto* about = new QLabel(content);
    about->setObjectName("start_about");
    about->setWordWrap(true);
    about->setTextFormat(Qt::RichText);
    about->setText(
        tr("<p>ltlab opens the run files of a classifier trained on long-tailed data (a few head classes with many "
           "images, many tail classes with few) and shows, epoch by epoch, how the tail falls behind.</p>"
           "<p>Its views measure neural collapse, the class means' cone instead of a simplex, and the classifier's "
           "weight norms falling from head to tail, which is where the tail's accuracy goes.</p>"
           "<p>Weight balancing and logit adjustment even this out: train a classroom preset or open a run, "
           "watch the norms level off, and export the papers' figures.</p>"));

    auto* picture = new StoryPicture(content);
    picture->setObjectName("start_picture");

    open_ = new QPushButton(tr("Open run…"), content);
    open_->setObjectName("start_open");
    open_->setToolTip(tr("Open ltlab run files (.h5): File > Open (Ctrl+O)"));
    import_ = new QPushButton(tr("Import checkpoint…"), content);
    import_->setObjectName("start_import");
    import_->setToolTip(tr("Evaluate PyTorch checkpoints, TorchScript modules or safetensors files on a dataset (Ctrl+I)"));
    train_ = new QToolButton(content);
    train_->setObjectName("start_train");
    train_->setText(tr("Train a classroom preset"));
    train_->setToolTip(tr("Fill the Training dock with a classroom preset (the arrow: choose which); Start trains it"));
    train_->setPopupMode(QToolButton::MenuButtonPopup);
    train_->setToolButtonStyle(Qt::ToolButtonTextOnly);
    train_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    presets_ = new QMenu(train_);
    train_->setMenu(presets_);
    connect(train_, &QToolButton::clicked, this, [this] { emit presetRequested(1); });
    demo_ = new QPushButton(tr("Open the demo"), content);
    demo_->setObjectName("start_demo");
    demo_->setToolTip(tr("A synthetic long-tailed run (and the Fashion-MNIST-LT weight-balancing run when "
                         "tools/run-demo.sh has trained it); written on first use"));
    demo_->setDefault(true);
    for (QPushButton* b : {open_, import_, demo_}) b->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    connect(open_, &QPushButton::clicked, this, &StartPage::openRequested);
    connect(import_, &QPushButton::clicked, this, &StartPage::importRequested);
    connect(demo_, &QPushButton::clicked, this, &StartPage::demoRequested);
    demo_status_ = new QLabel(content);
    demo_status_->setObjectName("start_demo_status");
    demo_status_->setWordWrap(true);
    demo_status_->hide();

    auto* buttons = new QGridLayout;
    buttons->addWidget(demo_, 0, 0);
    buttons->addWidget(open_, 0, 1);
    buttons->addWidget(train_, 1, 0);
    buttons->addWidget(import_, 1, 1);

    recent_title_ = new QLabel(tr("<b>Recent files</b>"), content);
    recent_ = new QListWidget(content);
    recent_->setObjectName("start_recent");
    recent_->setToolTip(tr("Double-click or Enter to open"));
    recent_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    recent_->setMinimumHeight(recent_->fontMetrics().height() * 3);
    connect(recent_, &QListWidget::itemActivated, this,
            [this](QListWidgetItem* item) { emit recentRequested(item->data(Qt::UserRole).toString()); });

    auto* text_column = new QVBoxLayout;
    text_column->addWidget(about);
    text_column->addStretch(1);
    auto* top = new QHBoxLayout;
    top->addLayout(text_column, 3);
    top->addWidget(picture, 2);

    auto* layout = new QVBoxLayout(content);
    layout->addWidget(title);
    layout->addLayout(top);
    layout->addLayout(buttons);
    layout->addWidget(demo_status_);
    layout->addSpacing(title->fontMetrics().height() / 2);
    layout->addWidget(recent_title_);
    layout->addWidget(recent_, 1);

    // Never cut: at large fonts on a small screen the page scrolls.
    auto* scroll = new QScrollArea(this);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidgetResizable(true);
    auto* centred = new QWidget;
    auto* centring = new QHBoxLayout(centred);
    centring->addStretch(0);
    centring->addWidget(content, 1);
    centring->addStretch(0);
    scroll->setWidget(centred);
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->addWidget(scroll);
    setRecentFiles({});
}

void StartPage::setRecentFiles(const QStringList& paths) {
    recent_->clear();
    for (const QString& path : paths) {
        const QFileInfo info(path);
        auto* item = new QListWidgetItem(QStringLiteral("%1  —  %2").arg(info.fileName(), info.absolutePath()), recent_);
        item->setData(Qt::UserRole, path);
        item->setToolTip(path);
        if (!info.exists()) item->setFlags(item->flags() & ~Qt::ItemIsEnabled); // moved or deleted
    }
    if (paths.isEmpty()) {
        auto* none = new QListWidgetItem(tr("No recent files yet: the runs you open appear here."), recent_);
        none->setFlags(Qt::NoItemFlags);
    }
}

void StartPage::setPresets(const QStringList& titles) {
    presets_->clear();
    for (int i = 1; i < titles.size(); ++i)
        presets_->addAction(titles[i], this, [this, i] { emit presetRequested(i); });
    train_->setEnabled(titles.size() > 1);
    if (titles.size() > 1) train_->setToolTip(tr("Fill the Training dock with \"%1\" (the arrow: the other presets); "
                                                 "Start trains it").arg(titles[1]));
}

void StartPage::setDemoBusy(bool busy, const QString& message) {
    demo_->setEnabled(!busy);
    demo_status_->setText(message);
    demo_status_->setVisible(!message.isEmpty());
}

} // namespace ltlab::ui
